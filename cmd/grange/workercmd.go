package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

func newWorkerCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "worker", Short: "Inspect the background workers of this node"}
	var req adminapi.ListWorkersRequest
	list := &cobra.Command{
		Use:   "list",
		Short: "List the background workers of this node: table sync, block resync, scrub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp adminapi.ListWorkersResponse
			if err := g.call("POST", "ListWorkers", selfNode(), req, &resp); err != nil {
				return err
			}
			ws, err := selfAnswer(&resp)
			if err != nil {
				return err
			}
			renderWorkers(cmd.OutOrStdout(), ws)
			return nil
		},
	}
	list.Flags().BoolVarP(&req.BusyOnly, "busy", "b", false, "only the workers doing something now")
	list.Flags().BoolVarP(&req.ErrorOnly, "errors", "e", false, "only the workers that failed at least once")
	cmd.AddCommand(list)
	return cmd
}

func renderWorkers(w io.Writer, ws []adminapi.WorkerInfoResp) {
	if len(ws) == 0 {
		fmt.Fprintln(w, "No workers.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSTATE\tPROGRESS\tRATE\tETA\tERRORS\tLAST ERROR")
	for _, x := range ws {
		progress := "-"
		switch {
		case x.Progress != nil:
			progress = *x.Progress
		case x.QueueLength != nil:
			progress = fmt.Sprintf("queue %d", *x.QueueLength)
		}
		rate := "-"
		if x.Rate > 0 {
			rate = fmt.Sprintf("%.1f/s", x.Rate)
		}
		eta := "-"
		if x.ETASecs != nil {
			eta = formatSecs(*x.ETASecs)
		}
		errs := fmt.Sprint(x.Errors)
		if x.PersistentErrors != nil && *x.PersistentErrors > 0 {
			errs += fmt.Sprintf(" (%d blocks in error)", *x.PersistentErrors)
		}
		last := "-"
		if x.LastError != nil {
			last = oneLine(x.LastError.Message)
			if x.LastError.SecsAgo != nil {
				last = formatSecs(*x.LastError.SecsAgo) + " ago: " + last
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Name, x.State, progress, rate, eta, errs, last)
	}
	tw.Flush()
}
