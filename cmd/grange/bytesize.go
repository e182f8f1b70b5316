package main

import (
	"fmt"
	"math/big"
	"strings"
)

// byteUnits are the units parseCapacity accepts, lowercased: decimal (as
// disks are sold, and as Garage reads them) and binary.
var byteUnits = map[string]uint64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
	"t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20,
	"gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
	"pi": 1 << 50, "pib": 1 << 50,
}

// parseCapacity reads a byte count written for humans: a number, possibly
// with a fraction, and an optional unit, case-insensitive: K, M, G, T, P
// (or KB…) are powers of 1000, KiB, MiB, GiB, TiB, PiB (or Ki…) powers of
// 1024. "1.5T" is 1 500 000 000 000 bytes. Fractions of a byte round down.
func parseCapacity(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("capacity %q: unknown unit %q (use K, M, G, T, P for powers of 1000, KiB, MiB, GiB, TiB, PiB for powers of 1024, or none for bytes)", s, t[i:])
	}
	r, ok := new(big.Rat).SetString(num)
	if num == "" || strings.Count(num, ".") > 1 || !ok {
		return 0, fmt.Errorf("capacity %q: want a number and an optional unit, like 500G, 1.5T or 800GiB", s)
	}
	r.Mul(r, new(big.Rat).SetUint64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsUint64() {
		return 0, fmt.Errorf("capacity %q is too large", s)
	}
	return n.Uint64(), nil
}

// formatBytes writes a byte count with one decimal in powers of 1000, as
// capacities are given: 500000000000 is "500.0 GB".
func formatBytes(n uint64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KB", "MB", "GB", "TB", "PB"} {
		v /= 1000
		if v < 999.95 {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return fmt.Sprintf("%.1f EB", v/1000)
}

// formatBinaryBytes writes a byte count set in binary units, like
// block_size, exactly: 1048576 is "1 MiB", 4096 "4 KiB"; other counts as
// formatBytes does.
func formatBinaryBytes(n uint64) string {
	for _, u := range []struct {
		name string
		size uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return formatBytes(n)
}
