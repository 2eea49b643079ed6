// gitops-check reads CheckpointReplicaSets the way GitOps tools read them, with the tools' own code:
//
//	gitops-check kstatus < object.json
//	    kstatus (sigs.k8s.io/cli-utils, what Flux's wait/healthChecks and kubectl-based tools use)
//	gitops-check argocd-health health.lua < object.json
//	    an Argo CD health script run in gopher-lua exactly as Argo CD runs a health.lua from
//	    argocd-cm: only the package, base and table libraries, `obj` global, 1 s deadline
//	gitops-check flux-kstatus < object.json
//	    the kstatus fork Flux's kustomize-controller reads for `wait: true` and `healthChecks`
//	gitops-check flux-cel KUSTOMIZATION.yaml < object.json
//	    Flux's CEL evaluator with that Kustomization's `healthCheckExprs` for the object's kind
//	gitops-check argocd-test DIR
//	    runs DIR/health_test.yaml against DIR/health.lua (the layout of Argo CD's
//	    resource_customizations), exit status 1 on any mismatch
//
// Objects are JSON (kubectl get -o json) or YAML; each answer is one JSON line on stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type answer struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gitops-check:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: gitops-check kstatus | flux-kstatus | flux-cel KUSTOMIZATION | argocd-health SCRIPT | argocd-test DIR")
	}
	switch args[0] {
	case "kstatus":
		obj, err := readObject(stdin)
		if err != nil {
			return err
		}
		res, err := status.Compute(obj)
		if err != nil {
			return fmt.Errorf("kstatus: %w", err)
		}
		return emit(stdout, answer{Status: res.Status.String(), Message: res.Message})
	case "flux-kstatus":
		return fluxKstatus(stdin, stdout)
	case "flux-cel":
		if len(args) != 2 {
			return errors.New("usage: gitops-check flux-cel KUSTOMIZATION.yaml < object")
		}
		return fluxCel(args[1], stdin, stdout)
	case "argocd-health":
		if len(args) != 2 {
			return errors.New("usage: gitops-check argocd-health SCRIPT < object")
		}
		script, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		obj, err := readObject(stdin)
		if err != nil {
			return err
		}
		res, err := argocdHealth(obj, string(script))
		if err != nil {
			return err
		}
		return emit(stdout, res)
	case "argocd-test":
		if len(args) != 2 {
			return errors.New("usage: gitops-check argocd-test DIR")
		}
		return argocdTest(args[1], stdout)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func emit(w io.Writer, a answer) error {
	return json.NewEncoder(w).Encode(a)
}

func readObject(r io.Reader) (*unstructured.Unstructured, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return parseObject(data)
}

// parseObject accepts JSON or YAML. Through UnmarshalJSON, integers stay int64 as they are in
// the tools (kstatus reads metadata.generation with NestedInt64, which refuses float64).
func parseObject(data []byte) (*unstructured.Unstructured, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("reading the object: %w", err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("reading the object: %w", err)
	}
	return obj, nil
}

// argocdHealth mirrors Argo CD's util/lua VM.runLua + ExecuteHealthLua for a script configured in
// argocd-cm (useOpenLibs false): the returned table's status must be one of Argo CD's codes.
func argocdHealth(obj *unstructured.Unstructured, script string) (answer, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for name, open := range map[string]lua.LGFunction{lua.LoadLibName: lua.OpenPackage, lua.BaseLibName: lua.OpenBase, lua.TabLibName: lua.OpenTable} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(open), NRet: 0, Protect: true}, lua.LString(name)); err != nil {
			return answer{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return answer{}, fmt.Errorf("health.lua: %w", err)
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return answer{}, fmt.Errorf("health.lua returned %s, Argo CD expects a table", l.Get(-1).Type())
	}
	res := answer{Status: lua.LVAsString(ret.RawGetString("status")), Message: lua.LVAsString(ret.RawGetString("message"))}
	switch res.Status {
	case "Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing":
		return res, nil
	}
	// What Argo CD shows for a status it does not know.
	return answer{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
}

// decodeValue converts like Argo CD's decodeValue: maps to tables, slices to sequences, numbers
// to LNumber.
func decodeValue(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []interface{}:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(decodeValue(l, item))
		}
		return t
	case map[string]interface{}:
		t := l.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetH(lua.LString(k), decodeValue(l, item))
		}
		return t
	}
	return lua.LNil
}

// The health_test.yaml format of Argo CD's resource_customizations.
type healthTests struct {
	Tests []struct {
		HealthStatus answer `json:"healthStatus"`
		InputPath    string `json:"inputPath"`
	} `json:"tests"`
}

func argocdTest(dir string, stdout io.Writer) error {
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		return err
	}
	spec, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
	if err != nil {
		return err
	}
	var tests healthTests
	if err := yaml.UnmarshalStrict(spec, &tests); err != nil {
		return fmt.Errorf("health_test.yaml: %w", err)
	}
	if len(tests.Tests) == 0 {
		return errors.New("health_test.yaml has no tests")
	}
	failed := 0
	for _, t := range tests.Tests {
		data, err := os.ReadFile(filepath.Join(dir, t.InputPath))
		if err != nil {
			return err
		}
		obj, err := parseObject(data)
		if err != nil {
			return fmt.Errorf("%s: %w", t.InputPath, err)
		}
		got, err := argocdHealth(obj, string(script))
		if err != nil {
			return fmt.Errorf("%s: %w", t.InputPath, err)
		}
		ok := got == t.HealthStatus
		if !ok {
			failed++
		}
		line, _ := json.Marshal(map[string]interface{}{"inputPath": t.InputPath, "ok": ok, "want": t.HealthStatus, "got": got})
		fmt.Fprintln(stdout, string(line))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d health tests failed", failed, len(tests.Tests))
	}
	return nil
}
