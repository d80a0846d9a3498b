// A Hatchet Go SDK probe, built from the pinned module github.com/hatchet-dev/hatchet:
//
//	probe worker NAME        register task NAME and serve it until SIGTERM
//	probe run NAME MESSAGE   run task NAME (any language's worker) once, print its JSON result
//
// The client takes every setting from its environment (HATCHET_CLIENT_*), as the Go SDK does.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	hatchet "github.com/hatchet-dev/hatchet/sdks/go"
)

type probeInput struct {
	Message string `json:"message"`
}

type probeOutput struct {
	Echo string `json:"echo"`
	Task string `json:"task"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: probe worker NAME | probe run NAME MESSAGE")
	}
	mode, name := os.Args[1], os.Args[2]
	client, err := hatchet.NewClient()
	if err != nil {
		fail("client: %v", err)
	}
	switch mode {
	case "worker":
		task := client.NewStandaloneTask(name, func(ctx hatchet.Context, in probeInput) (probeOutput, error) {
			return probeOutput{Echo: strings.ToUpper(in.Message), Task: name}, nil
		})
		worker, err := client.NewWorker(name+"-worker", hatchet.WithWorkflows(task), hatchet.WithSlots(2))
		if err != nil {
			fail("worker: %v", err)
		}
		ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer cancel()
		if err := worker.StartBlocking(ctx); err != nil {
			fail("worker stopped: %v", err)
		}
	case "run":
		if len(os.Args) < 4 {
			fail("usage: probe run NAME MESSAGE")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		result, err := client.Run(ctx, name, probeInput{Message: os.Args[3]})
		if err != nil {
			fail("run %s: %v", name, err)
		}
		var out probeOutput
		if err := result.TaskOutput(name).Into(&out); err != nil {
			fail("output of %s: %v", name, err)
		}
		text, _ := json.Marshal(out)
		fmt.Println(string(text))
	default:
		fail("unknown mode %q", mode)
	}
}
