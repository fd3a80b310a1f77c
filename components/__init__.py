"""Reusable Pulumi components that declare an IM cluster on AWS, GCP or Azure."""
