package main

// Flux's own readers: the kstatus fork Flux's kustomize-controller uses for `wait: true` and
// `healthChecks`, and its CEL evaluator for `healthCheckExprs` (RFC 0009).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	fluxstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/apis/kustomize"
	fluxcel "github.com/fluxcd/pkg/runtime/cel"
	"sigs.k8s.io/yaml"
)

func fluxKstatus(stdin io.Reader, stdout io.Writer) error {
	obj, err := readObject(stdin)
	if err != nil {
		return err
	}
	res, err := fluxstatus.Compute(obj)
	if err != nil {
		return fmt.Errorf("flux kstatus: %w", err)
	}
	return emit(stdout, answer{Status: res.Status.String(), Message: res.Message})
}

// A Flux Kustomization, as much of it as names the health check expressions.
type fluxKustomization struct {
	Kind string `json:"kind"`
	Spec struct {
		HealthCheckExprs []kustomize.CustomHealthCheck `json:"healthCheckExprs"`
	} `json:"spec"`
}

// fluxCel evaluates the object with the healthCheckExprs entry of its kind from the first
// Kustomization in FILE (a YAML stream) that has one, exactly as kustomize-controller does.
func fluxCel(file string, stdin io.Reader, stdout io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	obj, err := readObject(stdin)
	if err != nil {
		return err
	}
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		var k fluxKustomization
		if err := yaml.Unmarshal(doc, &k); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, check := range k.Spec.HealthCheckExprs {
			if check.APIVersion != obj.GetAPIVersion() || check.Kind != obj.GetKind() {
				continue
			}
			evaluator, err := fluxcel.NewStatusEvaluator(&check.HealthCheckExpressions)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			res, err := evaluator.Evaluate(context.Background(), obj)
			if err != nil {
				return fmt.Errorf("%s: evaluating: %w", file, err)
			}
			return emit(stdout, answer{Status: res.Status.String(), Message: res.Message})
		}
	}
	return fmt.Errorf("%s: no healthCheckExprs entry for %s %s", file, obj.GetAPIVersion(), obj.GetKind())
}
