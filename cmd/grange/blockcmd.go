package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

func newBlockCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "block", Short: "Inspect the data blocks stored on this node"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list-errors",
		Short: "List the blocks whose resync failed on this node",
		Long: `List the blocks this node could not bring in line with the layout and
their references: a block it should hold but could fetch from no other
node, or one it could not hand over. Each is retried by itself, with a
delay that doubles at each failure; ` + "`grange repair blocks`" + ` queues every
block again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp adminapi.ListBlockErrorsResponse
			if err := g.call("GET", "ListBlockErrors", selfNode(), nil, &resp); err != nil {
				return err
			}
			errs, err := selfAnswer(&resp)
			if err != nil {
				return err
			}
			renderBlockErrors(cmd.OutOrStdout(), errs)
			return nil
		},
	}, &cobra.Command{
		Use:   "stats",
		Short: "Show the block store counters of this node: blocks, bytes, resync queue, errors, scrub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp adminapi.GetNodeStatisticsResponse
			if err := g.call("GET", "GetNodeStatistics", selfNode(), nil, &resp); err != nil {
				return err
			}
			st, err := selfAnswer(&resp)
			if err != nil {
				return err
			}
			if st.Blocks == nil {
				return fmt.Errorf("the node reports no block store")
			}
			renderBlockStats(cmd.OutOrStdout(), st.Blocks, time.Now())
			return nil
		},
	})
	return cmd
}

func renderBlockErrors(w io.Writer, errs []adminapi.BlockErrorResp) {
	if len(errs) == 0 {
		fmt.Fprintln(w, "No block errors.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HASH\tFAILURES\tLAST TRY\tNEXT TRY\tMESSAGE")
	for _, e := range errs {
		next := "due now"
		if e.NextTryInSecs > 0 {
			next = "in " + formatSecs(e.NextTryInSecs)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s ago\t%s\t%s\n", e.BlockHash, e.ErrorCount, formatSecs(e.LastTrySecsAgo), next, oneLine(e.LastError))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d block(s) in error; each is retried by itself. `grange repair blocks` queues every block again.\n", len(errs))
}

// oneLine joins the lines of an error message (errors.Join writes one
// error per line) so that it fits a table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

func renderBlockStats(w io.Writer, b *adminapi.BlockStatistics, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Blocks stored:\t%d\n", b.Blocks)
	disk := formatBytes(uint64(max(b.BytesOnDisk, 0)))
	if b.BytesRaw > 0 {
		disk += fmt.Sprintf(" (%s before compression, %.0f%%)", formatBytes(uint64(b.BytesRaw)), 100*float64(b.BytesOnDisk)/float64(b.BytesRaw))
	}
	fmt.Fprintf(tw, "On disk:\t%s\n", disk)
	fmt.Fprintf(tw, "Resync queue:\t%d\n", b.ResyncQueueLength)
	inError := fmt.Sprint(b.ResyncErrors)
	if b.ResyncErrors > 0 {
		inError += " (grange block list-errors)"
	}
	fmt.Fprintf(tw, "Blocks in resync error:\t%s\n", inError)
	fmt.Fprintf(tw, "Since start:\t%s written, %s read; %d read errors, %d write errors, %d corrupt copies found\n",
		formatBytes(uint64(max(b.BytesWritten, 0))), formatBytes(uint64(max(b.BytesRead, 0))), b.ReadErrors, b.WriteErrors, b.Corruptions)
	fmt.Fprintf(tw, "Scrub:\t%s\n", scrubLine(&b.Scrub, now))
	for i, d := range b.DataDirs {
		label := "Data directories:"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, d.Path)
	}
	tw.Flush()
}

func scrubLine(s *adminapi.ScrubStatus, now time.Time) string {
	progress := fmt.Sprintf("%d/%d blocks checked, %d corrupt", s.Done, s.Total, s.Corrupt)
	switch {
	case s.Running && s.Paused:
		return "paused, " + progress + " (grange repair scrub resume)"
	case s.Running:
		return "running, " + progress
	}
	// a node counts the interval to its first pass from its first start:
	// LastCompletedAt is set before any pass started
	if t := parseStamp(s.LastCompletedAt); !t.IsZero() && s.StartedAt != nil {
		return fmt.Sprintf("idle, last pass ended %s ago", formatSecs(uint64(max(now.Sub(t), 0)/time.Second)))
	}
	return "idle, no pass yet"
}

func parseStamp(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, *s)
	return t
}
