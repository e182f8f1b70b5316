package main

import (
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

func newKeyCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage access keys"}

	create := &cobra.Command{
		Use:   "create [NAME]",
		Short: "Create an access key (its secret is shown once)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := adminapi.CreateKeyRequest{}
			if len(args) == 1 {
				req.Name = &args[0]
			}
			var info adminapi.GetKeyInfoResponse
			if err := g.call("POST", "CreateKey", nil, req, &info); err != nil {
				return err
			}
			printKey(cmd.OutOrStdout(), &info)
			return nil
		},
	}

	var importName string
	imp := &cobra.Command{
		Use:   "import [--name NAME] KEY_ID SECRET",
		Short: "Import an existing access key and secret",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := adminapi.ImportKeyRequest{AccessKeyID: args[0], SecretAccessKey: args[1]}
			if importName != "" {
				req.Name = &importName
			}
			var info adminapi.GetKeyInfoResponse
			if err := g.call("POST", "ImportKey", nil, req, &info); err != nil {
				return err
			}
			printKey(cmd.OutOrStdout(), &info)
			return nil
		},
	}
	imp.Flags().StringVar(&importName, "name", "", "name of the key")

	list := &cobra.Command{
		Use:   "list",
		Short: "List access keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var keys []adminapi.ListKeysResponseItem
			if err := g.call("GET", "ListKeys", nil, nil, &keys); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\n", k.ID, k.Name)
			}
			return tw.Flush()
		},
	}

	var showSecret bool
	info := &cobra.Command{
		Use:   "info [--show-secret] KEY",
		Short: "Show an access key (by ID, ID prefix or name) and its buckets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"search": {args[0]}}
			if showSecret {
				q.Set("showSecretKey", "true")
			}
			var info adminapi.GetKeyInfoResponse
			if err := g.call("GET", "GetKeyInfo", q, nil, &info); err != nil {
				return err
			}
			printKey(cmd.OutOrStdout(), &info)
			return nil
		},
	}
	info.Flags().BoolVar(&showSecret, "show-secret", false, "also print the secret access key")

	var yes bool
	del := &cobra.Command{
		Use:   "delete --yes KEY",
		Short: "Delete an access key and its permissions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var info adminapi.GetKeyInfoResponse
			if err := g.call("GET", "GetKeyInfo", url.Values{"search": {args[0]}}, nil, &info); err != nil {
				return err
			}
			if !yes {
				return fmt.Errorf("add --yes to really delete key %s (%s)", info.AccessKeyID, info.Name)
			}
			if err := g.call("POST", "DeleteKey", url.Values{"id": {info.AccessKeyID}}, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Access key %s deleted.\n", info.AccessKeyID)
			return nil
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")

	cmd.AddCommand(create, imp, list, info, del)
	return cmd
}

func printKey(w io.Writer, k *adminapi.GetKeyInfoResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Key name:\t%s\n", k.Name)
	fmt.Fprintf(tw, "Key ID:\t%s\n", k.AccessKeyID)
	if k.SecretAccessKey != nil {
		fmt.Fprintf(tw, "Secret key:\t%s\n", *k.SecretAccessKey)
	}
	fmt.Fprintf(tw, "Can create buckets:\t%v\n", k.Permissions.CreateBucket)
	tw.Flush()
	if len(k.Buckets) == 0 {
		return
	}
	fmt.Fprintln(w, "\nBuckets:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PERMISSIONS\tID\tGLOBAL ALIASES\tLOCAL ALIASES")
	for _, b := range k.Buckets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", permString(b.Permissions), b.ID, joinOr(b.GlobalAliases), joinOr(b.LocalAliases))
	}
	tw.Flush()
}
