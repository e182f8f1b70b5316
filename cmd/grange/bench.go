package main

import "github.com/spf13/cobra"

func newBenchCommand(g *globals) *cobra.Command {
	return &cobra.Command{Use: "bench", Short: "Benchmarks against a running node", Hidden: true}
}
