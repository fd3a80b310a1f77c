// pulumi-language-python: the engine tests' stand-in for Pulumi's Python language host.
//
// Why it exists: the CLI runs a `runtime: python` project (`pulumi preview`, `pulumi up` in the
// project folder) and a Python policy pack (`--policy-pack policy`) only through a language host
// of this name, and the Go module proxy does not serve Pulumi's own
// (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3). This one is written on the
// CLI's own sdk/v3 module, at the CLI's version, and does the least those two paths need:
//
//   - Run: the program, through the SDK's own `pulumi-language-python-exec` (tools/engine/build.sh
//     copies it beside this binary from the sdk/v3 module), with the python of the project's
//     virtualenv (Pulumi.yaml runtime options, resolved by the SDK's python/toolchain);
//   - RunPlugin of kind analyzer: a policy pack, `python -u -m pulumi.policy ENGINE PACKDIR` in the
//     pack's folder with the pack's virtualenv (PulumiPolicy.yaml runtime options), behind the SDK's
//     PolicyProxy, which takes the engine's ConfigureStack so that the pack gets the stack's
//     configuration in PULUMI_CONFIG, PULUMI_PROJECT and PULUMI_STACK, as it expects;
//   - GetPluginInfo (a version that says it is this stand-in) and GetRequiredPackages (none: the
//     tests put every plugin on PATH).
//
// What it does not do: install dependencies or create a virtualenv (run ./setup.sh; a missing one
// is an error that says so), any toolchain but a virtualenv (`toolchain: pip`; poetry and uv are
// refused), type checking, debugging, component or any other plugin kind, code generation, packing
// or linking SDKs. Everything else answers Unimplemented, which the CLI ignores where optional.
//
// It polls the engine's health and stops when the engine is gone, so it never outlives a crashed
// CLI. For tests only: users run the host Pulumi releases.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// version is stamped by tools/engine/build.sh: the sdk/v3 version it is built on, marked as this stand-in.
var version = "0.0.0-im-platform-stand-in"

// bailExitCode is pulumi-language-python-exec's "an error was already shown to the user".
const bailExitCode = 32

func main() {
	tracing := flag.String("tracing", "", "a Zipkin-compatible tracing endpoint, passed on to the program")
	flag.String("root", "", "the project root (unused: every request names its own)")
	flag.Parse()
	if flag.NArg() != 1 {
		cmdutil.Exit(errors.New("usage: pulumi-language-python [flags] ENGINE_ADDRESS"))
	}
	engine := flag.Arg(0)
	self, err := os.Executable()
	if err != nil {
		cmdutil.Exit(err)
	}
	execScript := self + "-exec"
	if _, err := os.Stat(execScript); err != nil {
		cmdutil.Exit(fmt.Errorf("%s is missing (tools/engine/build.sh copies it from the sdk/v3 module): %w",
			execScript, err))
	}

	// When the engine stops answering (the CLI crashed or was killed), stop serving and exit.
	ctx, cancel := context.WithCancel(context.Background())
	if err := rpcutil.Healthcheck(ctx, engine, 5*time.Second, cancel); err != nil {
		cmdutil.Exit(err)
	}
	stop := make(chan bool, 1)
	go func() {
		<-ctx.Done()
		stop <- true
		time.AfterFunc(10*time.Second, func() { os.Exit(1) }) // a graceful stop that hangs is no stop
	}()
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{engine: engine, exec: execScript, tracing: *tracing})
			return nil
		},
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start the language host's server: %w", err))
	}
	fmt.Printf("%d\n", handle.Port) // the CLI reads the port from the first line
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(err)
	}
}

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engine, exec, tracing string
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *host) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

// python is the interpreter of a project or pack: its virtualenv (relative to its root), or python3
// on PATH when it names none. The virtualenv must exist: this host installs nothing.
func python(ctx context.Context, info *pulumirpc.ProgramInfo) (toolchain.Toolchain, string, error) {
	options := info.GetOptions().AsMap()
	if name, _ := options["toolchain"].(string); name != "" && name != "pip" {
		return nil, "", fmt.Errorf("toolchain %q: this stand-in host runs a virtualenv only (toolchain: pip)", name)
	}
	if name, _ := options["typechecker"].(string); name != "" {
		return nil, "", fmt.Errorf("typechecker %q: this stand-in host does not type-check", name)
	}
	virtualenv, _ := options["virtualenv"].(string)
	tc, err := toolchain.ResolveToolchain(toolchain.PythonOptions{
		Root: info.GetRootDirectory(), ProgramDir: info.GetProgramDirectory(),
		Virtualenv: virtualenv, Toolchain: toolchain.Pip,
	})
	if err != nil {
		return nil, "", err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return nil, "", err
	}
	venv, err := tc.VirtualEnvPath(ctx)
	return tc, venv, err
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if req.GetAttachDebugger() {
		return nil, status.Error(codes.Unimplemented, "this stand-in Python host has no debugger")
	}
	info := req.GetInfo()
	py, _, err := python(ctx, info)
	if err != nil {
		return &pulumirpc.RunResponse{Error: err.Error()}, nil
	}
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(append([]string{}, req.GetConfigSecretKeys()...))
	if err != nil {
		return nil, err
	}
	args := []string{"-u", h.exec,
		"--monitor", req.GetMonitorAddress(), "--engine", h.engine,
		"--project", req.GetProject(), "--stack", req.GetStack(), "--pwd", req.GetPwd(),
		"--dry_run", strconv.FormatBool(req.GetDryRun()), "--parallel", strconv.Itoa(int(req.GetParallel())),
		"--root_directory", info.GetRootDirectory()}
	if org := req.GetOrganization(); org != "" {
		args = append(args, "--organization", org)
	}
	if h.tracing != "" {
		args = append(args, "--tracing", h.tracing)
	}
	args = append(args, filepath.Join(info.GetProgramDirectory(), info.GetEntryPoint()))
	args = append(args, req.GetArgs()...)
	cmd, err := py.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	cmd.Dir = req.GetPwd()
	cmd.Env = append(cmd.Env, "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr

	var exit *exec.ExitError
	switch err := cmd.Run(); {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exit) && exit.ExitCode() == bailExitCode:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exit):
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exit.ExitCode())}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run %s: %v", cmd.Path, err)}, nil
	}
}

func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	if kind := req.GetKind(); kind != string(apitype.AnalyzerPlugin) {
		return status.Errorf(codes.Unimplemented, "%s plugins: this stand-in Python host runs policy packs only", kind)
	}
	if req.GetAttachDebugger() {
		return status.Error(codes.Unimplemented, "this stand-in Python host has no debugger")
	}
	ctx := server.Context()
	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	info := req.GetInfo()
	py, venv, err := python(ctx, info)
	if err != nil {
		return err
	}

	// The engine configures the stack on the proxy; the pack, an older kind of analyzer, reads
	// that configuration from its environment when it starts.
	proxy, stdout, err := sdk.NewPolicyProxy(ctx, stdout)
	if err != nil {
		return fmt.Errorf("could not start the policy pack proxy: %w", err)
	}
	stack, err := proxy.AwaitConfiguration(ctx)
	if err != nil {
		return fmt.Errorf("could not get the stack's configuration: %w", err)
	}
	env := req.GetEnv()
	if venv != "" {
		env = toolchain.ActivateVirtualEnv(env, venv)
	}
	if stack != nil {
		config, err := json.Marshal(stack.GetConfig())
		if err != nil {
			return err
		}
		secretKeys, err := json.Marshal(append([]string{}, stack.GetConfigSecretKeys()...))
		if err != nil {
			return err
		}
		env = append(env, "PULUMI_CONFIG="+string(config), "PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys),
			"PULUMI_PROJECT="+stack.GetProject(), "PULUMI_STACK="+stack.GetStack(),
			"PULUMI_ORGANIZATION="+stack.GetOrganization(), "PULUMI_DRY_RUN="+strconv.FormatBool(stack.GetDryRun()))
	}

	// The CLI's arguments (its logging flags, then the engine's address), then the pack's folder.
	args := append([]string{"-u", "-m", "pulumi.policy"}, req.GetArgs()...)
	cmd, err := py.Command(ctx, append(args, info.GetProgramDirectory())...)
	if err != nil {
		return err
	}
	cmd.Dir, cmd.Env = info.GetProgramDirectory(), env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		proxy.Abort(err)
		return fmt.Errorf("could not start the policy pack with %s: %w", cmd.Path, err)
	}
	var exit *exec.ExitError
	if err := proxy.Attach(ctx, cmd); errors.As(err, &exit) {
		return server.Send(&pulumirpc.RunPluginResponse{
			Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(exit.ExitCode())}})
	} else if err != nil {
		return fmt.Errorf("policy pack %s: %w", info.GetProgramDirectory(), err)
	}
	return closer.Close()
}
