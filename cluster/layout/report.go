package layout

import (
	"fmt"
	"slices"
	"strings"
)

// report describes a computed version l for the operator, against the
// version prev it replaces (nil or without assignment for a first one), in
// the shape of Garage's `layout show`: settings, partition size, usable
// capacity, replicas to move, then per zone a tab-separated table (one
// header, a row per storage node, a total) meant for text/tabwriter.
func report(l, prev *Layout, zones []string) []string {
	var msg []string
	msg = append(msg, fmt.Sprintf("Partitions are replicated %d times on at least %d distinct zones.", l.ReplicationFactor, l.ZoneRedundancy))
	hasPrev := prev != nil && prev.hasAssignment()
	if hasPrev {
		msg = append(msg, fmt.Sprintf("Optimal partition size: %s (%s in previous layout)", formatBytes(l.PartitionSize), formatBytes(prev.PartitionSize)))
	} else {
		msg = append(msg, fmt.Sprintf("Optimal partition size: %s", formatBytes(l.PartitionSize)))
	}
	if l.PartitionSize < 100 {
		msg = append(msg, "WARNING: the partition size is below 100 bytes: check that node capacities are given in bytes")
	}
	var total uint64
	nodes := l.StorageNodes()
	for _, id := range nodes {
		total += l.Roles[id].CapacityBytes
	}
	used := l.PartitionSize * NumPartitions * uint64(l.ReplicationFactor)
	pct := percent(used, total)
	msg = append(msg,
		fmt.Sprintf("Usable capacity / total cluster capacity: %s / %s (%.1f %%)", formatBytes(used), formatBytes(total), pct),
		fmt.Sprintf("Effective capacity (replication factor %d): %s", l.ReplicationFactor, formatBytes(used/uint64(l.ReplicationFactor))))
	if pct < 80 {
		msg = append(msg, "Less than 80 % of the capacity is usable: the zone redundancy may force the use of small nodes or zones; move capacity between zones or lower the zone redundancy (see the saturated nodes below).")
	}
	stored := map[NodeID]int{}
	fresh := map[NodeID]int{}
	unique := map[string]int{}
	for p := range l.replicas {
		seen := map[string]bool{}
		for _, id := range l.replicas[p] {
			stored[id]++
			if !hasPrev || !slices.Contains(prev.replicas[p], id) {
				fresh[id]++
			}
			seen[l.Roles[id].Zone] = true
		}
		for z := range seen {
			unique[z]++
		}
	}
	if hasPrev {
		msg = append(msg, fmt.Sprintf("A total of %d new copies of partitions need to be transferred.", Moved(prev, l)))
	}
	for _, z := range zones {
		msg = append(msg, "", z+"\tTags\tPartitions\tCapacity\tUsable capacity")
		var zoneParts int
		var zoneCap uint64
		for _, id := range nodes {
			r := l.Roles[id]
			if r.Zone != z {
				continue
			}
			usable := uint64(stored[id]) * l.PartitionSize
			zoneParts += stored[id]
			zoneCap += r.CapacityBytes
			msg = append(msg, fmt.Sprintf("  %s\t%s\t%d (%d new)\t%s\t%s (%.1f%%)",
				id.Short(), strings.Join(r.Tags, ","), stored[id], fresh[id],
				formatBytes(r.CapacityBytes), formatBytes(usable), percent(usable, r.CapacityBytes)))
		}
		usable := uint64(zoneParts) * l.PartitionSize
		msg = append(msg, fmt.Sprintf("  TOTAL\t\t%d (%d unique)\t%s\t%s (%.1f%%)",
			zoneParts, unique[z], formatBytes(zoneCap), formatBytes(usable), percent(usable, zoneCap)))
	}
	return msg
}

func percent(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// formatBytes writes n in decimal units with one decimal: "3.9 GB".
func formatBytes(n uint64) string {
	const units = "KMGTPE"
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	i := -1
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.1f %cB", f, units[i])
}
