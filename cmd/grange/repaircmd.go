package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

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
			if err := g.call("POST", "LaunchRepairOperation", nil, adminapi.LaunchRepairOperationRequest{RepairType: "tables"}, nil); err != nil {
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
	cmd.AddCommand(tables)
	return cmd
}
