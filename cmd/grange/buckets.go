package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

func newBucketCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bucket", Short: "Manage buckets"}

	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a bucket with a global name",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var info adminapi.GetBucketInfoResponse
			if err := g.call("POST", "CreateBucket", nil, adminapi.CreateBucketRequest{GlobalAlias: &args[0]}, &info); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Bucket %s created (id %s).\n", args[0], info.ID)
			return nil
		},
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List buckets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var buckets []adminapi.ListBucketsResponseItem
			if err := g.call("GET", "ListBuckets", nil, nil, &buckets); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tGLOBAL ALIASES\tLOCAL ALIASES")
			for _, b := range buckets {
				var locals []string
				for _, l := range b.LocalAliases {
					locals = append(locals, l.AccessKeyID+":"+l.Alias)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", b.ID, joinOr(b.GlobalAliases), joinOr(locals))
			}
			return tw.Flush()
		},
	}

	info := &cobra.Command{
		Use:   "info BUCKET",
		Short: "Show a bucket (by name, ID or ID prefix) and the keys allowed on it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.findBucket(args[0])
			if err != nil {
				return err
			}
			printBucket(cmd.OutOrStdout(), b)
			return nil
		},
	}

	var yes bool
	del := &cobra.Command{
		Use:   "delete --yes BUCKET",
		Short: "Delete an empty bucket and its aliases",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.findBucket(args[0])
			if err != nil {
				return err
			}
			if !yes {
				return fmt.Errorf("add --yes to really delete bucket %s (%s)", args[0], b.ID)
			}
			if err := g.call("POST", "DeleteBucket", url.Values{"id": {b.ID}}, nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Bucket %s deleted.\n", args[0])
			return nil
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")

	cmd.AddCommand(create, list, info, del,
		permCommand(g, "allow", "AllowBucketKey", "Grant permissions on a bucket to a key"),
		permCommand(g, "deny", "DenyBucketKey", "Revoke permissions on a bucket from a key"),
		aliasCommand(g, "alias", "AddBucketAlias", "Give a bucket one more global name"),
		aliasCommand(g, "unalias", "RemoveBucketAlias", "Remove a global name of a bucket"))
	return cmd
}

func permCommand(g *globals, verb, op, short string) *cobra.Command {
	var read, write, owner bool
	var key string
	cmd := &cobra.Command{
		Use:   verb + " [--read] [--write] [--owner] BUCKET --key KEY",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !read && !write && !owner {
				return fmt.Errorf("give at least one of --read, --write and --owner")
			}
			b, err := g.findBucket(args[0])
			if err != nil {
				return err
			}
			var k adminapi.GetKeyInfoResponse
			if err := g.call("GET", "GetKeyInfo", url.Values{"search": {key}}, nil, &k); err != nil {
				return err
			}
			req := adminapi.BucketKeyPermChangeRequest{BucketID: b.ID, AccessKeyID: k.AccessKeyID,
				Permissions: adminapi.BucketKeyPerm{Read: read, Write: write, Owner: owner}}
			var info adminapi.GetBucketInfoResponse
			if err := g.call("POST", op, nil, req, &info); err != nil {
				return err
			}
			p := adminapi.BucketKeyPerm{}
			for _, bk := range info.Keys {
				if bk.AccessKeyID == k.AccessKeyID {
					p = bk.Permissions
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Key %s now has permissions %s on bucket %s.\n", k.AccessKeyID, permString(p), args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&read, "read", false, "the read permission")
	cmd.Flags().BoolVar(&write, "write", false, "the write permission")
	cmd.Flags().BoolVar(&owner, "owner", false, "the owner permission")
	cmd.Flags().StringVar(&key, "key", "", "access key (ID, ID prefix or name)")
	cmd.MarkFlagRequired("key")
	return cmd
}

func aliasCommand(g *globals, verb, op, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " BUCKET NAME",
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.findBucket(args[0])
			if err != nil {
				return err
			}
			var info adminapi.GetBucketInfoResponse
			if err := g.call("POST", op, nil, adminapi.BucketAliasRequest{BucketID: b.ID, GlobalAlias: args[1]}, &info); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Bucket %s: global names %s.\n", info.ID, joinOr(info.GlobalAliases))
			return nil
		},
	}
}

func (g *globals) findBucket(name string) (*adminapi.GetBucketInfoResponse, error) {
	var info adminapi.GetBucketInfoResponse
	if err := g.call("GET", "GetBucketInfo", url.Values{"search": {name}}, nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

func printBucket(w io.Writer, b *adminapi.GetBucketInfoResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Bucket:\t%s\n", b.ID)
	if b.Created != "" {
		fmt.Fprintf(tw, "Created:\t%s\n", b.Created)
	}
	fmt.Fprintf(tw, "Global names:\t%s\n", joinOr(b.GlobalAliases))
	tw.Flush()
	if len(b.Keys) == 0 {
		fmt.Fprintln(w, "\nNo key has permissions on this bucket.")
		return
	}
	fmt.Fprintln(w, "\nKeys:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PERMISSIONS\tACCESS KEY\tNAME\tLOCAL ALIASES")
	for _, k := range b.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", permString(k.Permissions), k.AccessKeyID, k.Name, joinOr(k.BucketLocalAliases))
	}
	tw.Flush()
}

func permString(p adminapi.BucketKeyPerm) string {
	b := []byte("---")
	if p.Read {
		b[0] = 'R'
	}
	if p.Write {
		b[1] = 'W'
	}
	if p.Owner {
		b[2] = 'O'
	}
	return string(b)
}

func joinOr(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}
