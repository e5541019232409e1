package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
)

// bundleLogLines is how many of the daemon's recent log lines go in a
// bundle.
const bundleLogLines = 2000

// bundleView is `storectl bundle --json`.
type bundleView struct {
	File   string   `json:"file"`
	Bytes  int      `json:"bytes"`
	Source string   `json:"source"`
	Files  []string `json:"files"`
}

// manifest is the bundle's manifest.json.
type manifest struct {
	Created  string   `json:"created"`
	Storectl string   `json:"storectl"`
	Running  bool     `json:"running"`
	Files    []string `json:"files"`
	Notes    []string `json:"notes,omitempty"`
}

func (a *app) bundleCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "bundle -o FILE",
		Short: "Write a support archive (.tar.gz): status, doctor, config, recent logs; no personal data",
		Long: `Write a support archive for the support team, a .tar.gz holding: status and
doctor (as text and JSON), the outbox's totals, the configuration in force
with secrets removed (paths of key files stay, their contents never), the
daemon's recent log lines (from its in-memory ring buffer, which masks
anything that looks like an identifier), and the versions.

It holds no personal data: identifiers are masked, ids appear only as short
keyed hashes, attribute and event values are never read. With the daemon
down, it holds what the store file and the config tell, and no log lines
(see journalctl -u storeagent).

-o - writes the archive to stdout.`,
		Example: `  storectl bundle -o /tmp/support.tar.gz
  storectl bundle -o - | ssh support@example.com 'cat > store-42.tar.gz'`,
		Args: noArgs,
		RunE: a.wrap(func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usage("bundle needs -o FILE (or -o - for stdout)")
			}
			return a.bundle(cmd.Context(), out)
		}),
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the archive to `FILE` (- for stdout)")
	return cmd
}

func (a *app) bundle(ctx context.Context, out string) error {
	now := a.opts.Now()
	files, running, notes, err := a.bundleFiles(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	m := manifest{Created: now.UTC().Format("2006-01-02T15:04:05Z"), Storectl: a.opts.Version, Running: running, Files: append([]string{"manifest.json"}, names...), Notes: notes}
	mb, _ := json.MarshalIndent(m, "", "  ")
	files = append([]support.BundleFile{{Name: "manifest.json", Data: append(mb, '\n')}}, files...)
	var buf bytes.Buffer
	dir := "storeagent-bundle-" + now.UTC().Format("20060102-150405")
	if err := support.WriteBundle(&buf, dir, now, files); err != nil {
		return err
	}
	if out == "-" {
		_, err := a.stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o600); err != nil {
		return failed("write the bundle: %v", err)
	}
	source := sourceDaemon
	if !running {
		source = sourceStore
	}
	v := bundleView{File: out, Bytes: buf.Len(), Source: source, Files: m.Files}
	if a.flags.json {
		return a.printJSON(v)
	}
	_, err = fmt.Fprintf(a.stdout, "wrote %s (%s): %s\nit holds no personal data: identifiers masked, ids as refs, values left out\n",
		out, support.Bytes(v.Bytes), strings.Join(v.Files, ", "))
	return err
}

// bundleFiles gathers the bundle's files: each rendered as the command of
// the same name would print it.
func (a *app) bundleFiles(ctx context.Context) (files []support.BundleFile, running bool, notes []string, err error) {
	add := func(name string, data []byte) { files = append(files, support.BundleFile{Name: name, Data: data}) }
	st, err := a.status(ctx)
	if err != nil {
		return nil, false, nil, err
	}
	running = st.Running
	add("status.json", jsonBytes(st))
	add("status.txt", a.render(func(b *app) error { return b.printStatus(st) }))
	rep, err := a.doctor(ctx)
	if err != nil {
		return nil, false, nil, err
	}
	add("doctor.json", jsonBytes(doctorView{DoctorReport: rep, Failed: rep.Failed()}))
	add("doctor.txt", a.render(func(b *app) error { return b.printDoctor(rep) }))
	if ob, err := a.outbox(ctx); err == nil {
		add("outbox.json", jsonBytes(ob))
	} else {
		notes = append(notes, "outbox: "+err.Error())
	}
	if cv, err := a.configView(ctx); err == nil {
		add("config.toml", []byte("# "+cv.Path+"\n"+cv.TOML))
	} else {
		notes = append(notes, "config: "+err.Error())
	}
	logs, note := a.bundleLogs(ctx, running)
	add("logs.txt", logs)
	if note != "" {
		notes = append(notes, note)
	}
	add("versions.json", jsonBytes(a.versions(st)))
	return files, running, notes, nil
}

func (a *app) bundleLogs(ctx context.Context, running bool) ([]byte, string) {
	if !running {
		return []byte("storeagent is not running: no recent log lines (see journalctl -u storeagent)\n"), "no log lines: storeagent is not running"
	}
	var lines localapi.LogLines
	err := a.withDaemon(ctx, func(ctx context.Context, c *localapi.Client) error {
		var err error
		lines, err = c.Logs(ctx, bundleLogLines)
		return err
	})
	if err != nil {
		return []byte("the daemon's log lines could not be read: " + err.Error() + "\n"), "logs: " + err.Error()
	}
	var b bytes.Buffer
	if lines.Dropped > 0 {
		fmt.Fprintf(&b, "# %d older lines are no longer held\n", lines.Dropped)
	}
	for _, l := range lines.Lines {
		b.WriteString(l + "\n")
	}
	return b.Bytes(), ""
}

// render runs print with stdout captured.
func (a *app) render(print func(b *app) error) []byte {
	var buf bytes.Buffer
	b := *a
	b.stdout = &buf
	if err := print(&b); err != nil {
		fmt.Fprintf(&buf, "(could not render: %v)\n", err)
	}
	return buf.Bytes()
}

func jsonBytes(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return []byte(fmt.Sprintf("{\"error\": %q}\n", err.Error()))
	}
	return append(b, '\n')
}

// versionView is `storectl version --json`, and versions.json of a bundle.
type versionView struct {
	Storectl   componentVersion `json:"storectl"`
	Storeagent componentVersion `json:"storeagent"`
}

type componentVersion struct {
	Version  string `json:"version,omitempty"`
	Running  *bool  `json:"running,omitempty"`
	Go       string `json:"go,omitempty"`
	Platform string `json:"platform,omitempty"`
}

func (a *app) versions(st statusView) versionView {
	running := st.Running
	return versionView{
		Storectl:   componentVersion{Version: a.opts.Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH},
		Storeagent: componentVersion{Version: st.Version, Running: &running},
	}
}
