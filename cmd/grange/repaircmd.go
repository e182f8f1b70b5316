package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/blocks"
	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

func newRepairCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "repair", Short: "Force repairs of this node's data"}
	var detach bool
	tables := &cobra.Command{
		Use:   "tables",
		Short: "Compare every table partition with the other replicas now and send them what they lack",
		Long: `Run a full anti-entropy pass on this node now instead of waiting for the
periodic one: for every table and partition, the node compares its Merkle
tree with each other replica's and sends the entries that differ. Progress
is printed until the pass ends (--detach returns at once).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var before adminapi.TableSyncStatus
			if err := g.call("GET", "GetTableSyncStatus", nil, nil, &before); err != nil {
				return err
			}
			if err := g.call("POST", "LaunchRepairOperation", nil, adminapi.LaunchRepairOperationRequest{RepairType: adminapi.RepairType{Name: adminapi.RepairTables}}, nil); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if detach {
				fmt.Fprintln(out, "Table repair launched.")
				return nil
			}
			same := func(a, b *string) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }
			for {
				time.Sleep(200 * time.Millisecond)
				var st adminapi.TableSyncStatus
				if err := g.call("GET", "GetTableSyncStatus", nil, nil, &st); err != nil {
					return err
				}
				if st.Running {
					fmt.Fprintf(out, "\rsyncing tables: %d/%d partitions", st.Done, st.Total)
					continue
				}
				if same(st.FinishedAt, before.FinishedAt) && same(st.StartedAt, before.StartedAt) {
					continue // not begun yet
				}
				fmt.Fprintf(out, "\rsyncing tables: %d/%d partitions\n", st.Done, st.Total)
				if st.Error != nil {
					return fmt.Errorf("table repair incomplete: %s", *st.Error)
				}
				fmt.Fprintf(out, "Table repair done; layout version %d synced on this node.\n", st.SyncedLayout)
				return nil
			}
		},
	}
	tables.Flags().BoolVar(&detach, "detach", false, "launch the repair and return at once")
	cmd.AddCommand(tables, newRepairBlocksCommand(g), newRepairScrubCommand(g))
	return cmd
}

func newRepairBlocksCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "blocks",
		Short: "Check every block this node stores or references now",
		Long: `Queue for resync every block this node stores or holds a reference to:
the resync worker fetches the blocks this node should have and lacks
(a wiped or replaced disk), hands over the blocks it should no longer hold
(after a layout change), and deletes the blocks nobody references once
their grace period is over. It returns at once; follow the work with
` + "`grange worker list`" + ` and its failures with ` + "`grange block list-errors`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := adminapi.LaunchRepairOperationRequest{RepairType: adminapi.RepairType{Name: adminapi.RepairBlocks}}
			if err := g.call("POST", "LaunchRepairOperation", nil, req, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Block resync queued: every block this node stores or references will be checked.\nFollow it with `grange worker list`; failures show in `grange block list-errors`.")
			return nil
		},
	}
}

// scrubDone is what each scrub command prints once applied.
var scrubDone = map[blocks.ScrubCommand]string{
	blocks.ScrubStart:  "Scrub started: every block stored on this node is read back and checked against its hash;\ncorrupt copies are set aside and fetched again from other nodes. Follow it with `grange worker list`.",
	blocks.ScrubPause:  "Scrub paused; `grange repair scrub resume` continues it where it stopped.",
	blocks.ScrubResume: "Scrub resumed.",
	blocks.ScrubCancel: "Scrub cancelled; the next automatic pass is due one scrub interval from now.",
}

func newRepairScrubCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "scrub start|pause|resume|cancel",
		Short: "Start, pause, resume or cancel the check of every block stored on this node",
		Long: `The scrub reads back every block stored on this node, at a limited rate,
and checks it against its hash; a corrupt copy is set aside (kept as
<hash>.corrupted) and fetched again from another node. A pass starts by
itself every 25 days; these commands drive it by hand.`,
		ValidArgs: []string{"start", "pause", "resume", "cancel"},
		Args:      cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := blocks.ScrubCommand(args[0])
			done, ok := scrubDone[c]
			if !ok {
				return fmt.Errorf("scrub %q: want start, pause, resume or cancel", args[0])
			}
			req := adminapi.LaunchRepairOperationRequest{RepairType: adminapi.RepairType{Name: adminapi.RepairScrub, Scrub: c}}
			if err := g.call("POST", "LaunchRepairOperation", nil, req, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), done)
			return nil
		},
	}
}
