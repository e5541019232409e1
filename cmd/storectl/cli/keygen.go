package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/storeagent/storeagent/store"
)

func (a *app) keygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen FILE",
		Short: "Write a new random 32-byte key file (mode 0600), such as a store's at-rest key",
		Long: `Write a new random 32-byte key, hex encoded, to FILE with mode 0600. It refuses
to overwrite a file: losing a store's key makes its sealed data unreadable.
Back the key up with the device's secrets.`,
		Example: `  storectl keygen /var/lib/storeagent/store.key`,
		Args:    exactArgs(1, "the key FILE to write"),
		RunE: a.wrap(func(cmd *cobra.Command, args []string) error {
			if _, err := store.GenerateKeyFile(args[0]); err != nil {
				return failed("%v", err)
			}
			if a.flags.json {
				return a.printJSON(map[string]string{"file": args[0], "mode": "0600"})
			}
			_, err := fmt.Fprintf(a.stdout, "wrote a new key to %s (mode 0600): back it up with the device's secrets\n", args[0])
			return err
		}),
	}
}
