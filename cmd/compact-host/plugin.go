package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/compacthost/compacthost/abi"
	"github.com/compacthost/compacthost/host"
)

// pluginTwins are the plugin commands' environment variables.
var pluginTwins = envTwins{"plugins": "COMPACT_HOST_PLUGINS"}

func newPluginCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Check strategy modules and list what a plugin store serves",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newPluginValidateCommand(), newPluginListCommand())
	return cmd
}

// pluginReport is what plugin validate prints.
type pluginReport struct {
	File      string       `json:"file"`
	Name      string       `json:"name"`
	Version   string       `json:"version"`
	SHA256    string       `json:"sha256"`
	Bytes     int          `json:"bytes"`
	MinMemory uint64       `json:"min_memory_bytes"`
	Manifest  abi.Manifest `json:"manifest"`
}

func newPluginValidateCommand() *cobra.Command {
	var (
		asJSON bool
		memory = humanBytes(host.DefaultMemoryBytes)
	)
	cmd := &cobra.Command{
		Use:   "validate <file.wasm>",
		Short: "Run admission on a strategy module and print its manifest",
		Long: `validate runs every admission rule the host applies before a strategy may run (size limit,
structure and wazero validation, ABI version, allowed imports, required exports, minimum memory),
starts the module once to read its manifest, and prints it. It also refuses a module no task
could run: a manifest field selector no Milvus collection has (a field ID from 2 to 99), or a
minimum memory (the module's or the manifest's min_memory) above the runtime's largest grant or
above --memory. A refusal names the rule that failed (exit 6).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return withCode(exitUsage, fmt.Errorf("plugin validate takes one .wasm file, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return withCode(fileCode(err), fmt.Errorf("read plugin: %w", err))
			}
			rt, err := host.NewRuntime(ctx, host.Config{})
			if err != nil {
				return withCode(exitFailure, err)
			}
			defer rt.Close(ctx)
			p, err := admitFile(ctx, rt, args[0], wasm)
			if err != nil {
				return withCode(exitPlugin, err)
			}
			defer p.Release()
			inst, err := rt.NewInstance(ctx, p, host.InstanceConfig{Grant: max(64<<20, p.MinMemory()), ManifestOnly: true})
			if err != nil {
				return withCode(exitPlugin, err)
			}
			m := inst.Manifest()
			inst.Close()
			if err := rt.CheckRunnable(p, m, int64(memory)); err != nil {
				return withCode(exitPlugin, err)
			}
			id := p.ID()
			rep := pluginReport{File: args[0], Name: id.Name, Version: id.Version, SHA256: id.SHA256,
				Bytes: p.Size(), MinMemory: p.MinMemory(), Manifest: m}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			fmt.Fprintf(out, "%s: admitted as %s@%s\n", rep.File, rep.Name, rep.Version)
			fmt.Fprintf(out, "  sha256 %s, %d bytes, minimum memory %d bytes\n", rep.SHA256, rep.Bytes, rep.MinMemory)
			fmt.Fprintf(out, "  handles %v, sees fields %v, min_memory %d, batch_rows %d\n",
				m.Handles, m.Fields, m.MinMemory, m.BatchRows)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().Var(&memory, "memory", "the node's memory budget a task's pool takes its share from; a plugin needing more is refused")
	runTwins.describe(cmd.Flags())
	return cmd
}

func newPluginListCommand() *cobra.Command {
	var (
		dir          string
		asJSON       bool
		admitTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the plugins a plugin directory serves, with versions, hashes and refusals",
		Long: `list loads a plugin directory the way serve does (files named name@version.wasm, each admitted
and started once, each within --admit-timeout) and shows, for every file, its state (active,
standby: admitted but not the highest version, loading, or refused with the reason) and sha256.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				return withCode(exitNotFound, fmt.Errorf("plugin directory %s: not a directory", dir))
			}
			rt, err := host.NewRuntime(ctx, host.Config{})
			if err != nil {
				return withCode(exitFailure, err)
			}
			defer rt.Close(ctx)
			reg := host.NewRegistry(rt, host.DirSource(dir), host.RegistryConfig{AdmitTimeout: admitTimeout})
			defer reg.Close()
			if err := reg.Poll(ctx); err != nil {
				return withCode(exitFailure, err)
			}
			list := reg.Plugins()
			out := cmd.OutOrStdout()
			if asJSON {
				type row struct {
					File    string `json:"file"`
					Name    string `json:"name"`
					Version string `json:"version"`
					SHA256  string `json:"sha256,omitempty"`
					Active  bool   `json:"active"`
					State   string `json:"state"`
					Error   string `json:"error,omitempty"`
				}
				rows := []row{}
				for _, s := range list {
					r := row{File: s.File, Name: s.ID.Name, Version: s.ID.Version, SHA256: s.ID.SHA256, Active: s.Active, State: s.State()}
					if s.Err != nil {
						r.Error = s.Err.Error()
					}
					rows = append(rows, r)
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSHA256\tFILE\tSTATE")
			for _, s := range list {
				state := s.State()
				if state == "refused" {
					state += ": " + firstLine(s.Err)
				}
				sha := s.ID.SHA256
				if len(sha) > 12 {
					sha = sha[:12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID.Name, s.ID.Version, sha, s.File, state)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "plugins", "./plugins.d", "plugin directory of name@version.wasm files")
	pluginTwins.describe(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().DurationVar(&admitTimeout, "admit-timeout", host.DefaultAdmitTimeout, "refuse a binary whose admission (compile, trial start) takes longer")
	return cmd
}

func firstLine(err error) string {
	s := err.Error()
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
