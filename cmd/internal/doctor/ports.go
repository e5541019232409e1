package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/tarm/serial"

	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
)

// portChecks checks each configured serial port: the daemon's view when it
// runs (it holds the port: opening it again would steal frames), else the
// port opened and closed.
func portChecks(ctx context.Context, env *Env) []localapi.Check {
	if len(env.Config.Scanners) == 0 {
		return []localapi.Check{skip("ports", "no serial scanner configured")}
	}
	var out []localapi.Check
	for _, s := range env.Config.Scanners {
		name := "port:" + s.Name
		if env.Running && env.Status != nil {
			out = append(out, daemonPortCheck(env, name, s.Name))
			continue
		}
		out = append(out, openPortCheck(env, name, s.Scanner()))
	}
	return out
}

func daemonPortCheck(env *Env, name, port string) localapi.Check {
	for _, sc := range env.Status.Scanners {
		if sc.Name != port {
			continue
		}
		if sc.Connected {
			return ok(name, fmt.Sprintf("%s held by storeagent: connected, %d good frames, last %s", sc.Path, sc.Frames, support.Ago(sc.LastFrame, env.Now())))
		}
		c := fail(name, sc.Path+": storeagent cannot open it", portHint)
		if sc.LastError != "" {
			c.Details = []string{sc.LastError + " (" + support.Ago(sc.LastErrorAt, env.Now()) + ")"}
		}
		return c
	}
	return warn(name, "not in storeagent's status: restart it to apply the config", "")
}

const portHint = "check the cable and the path (ls -l /dev/serial/by-id/); the storeagent user needs the dialout group"

func openPortCheck(env *Env, name string, cfg scanner.Config) localapi.Check {
	if _, err := os.Stat(cfg.Path); errors.Is(err, fs.ErrNotExist) {
		return fail(name, cfg.Path+" is not present", portHint)
	}
	if err := env.OpenPort(cfg); err != nil {
		c := fail(name, cfg.Path+" is present but does not open", portHint)
		c.Details = []string{err.Error()}
		return c
	}
	return ok(name, fmt.Sprintf("%s is present and opens at %d baud", cfg.Path, cfg.Baud))
}

// openPort opens the port as the scanner driver does, then closes it.
func openPort(cfg scanner.Config) error {
	p, err := serial.OpenPort(&serial.Config{Name: cfg.Path, Baud: cfg.Baud, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	return p.Close()
}
