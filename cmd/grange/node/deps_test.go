package node

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/grangeio/grange"

// TestDependencyDirection enforces the layering of docs/architecture.md
// and style.md §2 on every direct import (tests included): a lower package
// never imports a higher one, clients import no server package and nothing
// outside the standard library, pebble stays inside k2v and fasthttp inside
// the *http packages and cmd/grange.
func TestDependencyDirection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type pkg struct {
		ImportPath                         string
		Imports, TestImports, XTestImports []string
	}
	n := 0
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			if reason := forbidden(rel, imp, false); reason != "" {
				t.Errorf("%s imports %s: %s", p.ImportPath, imp, reason)
			}
		}
		for _, imp := range append(p.TestImports, p.XTestImports...) {
			if reason := forbidden(rel, imp, true); reason != "" {
				t.Errorf("tests of %s import %s: %s", p.ImportPath, imp, reason)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if n < 8 {
		t.Fatalf("go list found only %d packages", n)
	}
}

// mayImport lists, for each layer, the grange layers it may import besides
// its own sub-packages. cmd/grange (the binary and its node wiring) may
// import everything.
var mayImport = map[string][]string{
	"cluster": {},
	"k2v":     {"cluster"},
	"blocks":  {"k2v", "cluster"},
	"s3":      {"blocks", "k2v", "cluster"},
	"clients": {},
	// bench drives servers through clients and node; the block store has
	// no client API before S3, so its benchmark calls blocks (and k2v
	// batches for references, cluster for layouts) on in-process nodes.
	"bench": {"clients", "cmd/grange/node", "blocks", "k2v", "cluster"},
}

// layer returns the layer of a package path relative to the module.
func layer(rel string) string {
	if rel == "cmd/grange/node" {
		return rel
	}
	if strings.HasPrefix(rel, "cmd/grange") {
		return "cmd/grange"
	}
	first, _, _ := strings.Cut(rel, "/")
	return first
}

func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func forbidden(rel, imp string, test bool) string {
	from := layer(rel)
	if from == "cmd/grange/node" {
		from = "cmd/grange"
	}
	if to, ok := strings.CutPrefix(imp, module+"/"); ok {
		target := layer(to)
		if target == from || (from == "cmd/grange" && target == "cmd/grange/node") {
			return ""
		}
		allowed, ok := mayImport[from]
		if !ok {
			return ""
		}
		for _, a := range allowed {
			if target == a {
				return ""
			}
		}
		return "a lower layer imports a higher one (docs/architecture.md)"
	}
	switch {
	case strings.HasPrefix(imp, "github.com/cockroachdb/pebble"):
		if from != "k2v" {
			return "pebble is imported only by k2v"
		}
	case strings.HasPrefix(imp, "github.com/valyala/fasthttp"):
		if from != "cmd/grange" && !strings.HasSuffix(rel, "http") {
			return "fasthttp appears only in *http packages and cmd/grange"
		}
	}
	// clients: standard library only, except test oracles (the AWS signer)
	if from == "clients" && !isStd(imp) && !(test && strings.HasPrefix(imp, "github.com/aws/")) {
		return "clients depend on the standard library only, so that apps embedding the SDK inherit nothing"
	}
	return ""
}

// The rules themselves, on imports that must and must not pass.
func TestForbiddenRules(t *testing.T) {
	tests := []struct {
		from, imp string
		test      bool
		bad       bool
	}{
		{"cluster", module + "/k2v", false, true},
		{"cluster/layout", module + "/cluster", false, false},
		{"k2v", module + "/cluster/layout", false, false},
		{"k2v", module + "/blocks", false, true},
		{"k2v/k2vhttp", "github.com/valyala/fasthttp", false, false},
		{"k2v", "github.com/valyala/fasthttp", false, true},
		{"k2v/sigv4", "github.com/valyala/fasthttp", false, true},
		{"blocks", module + "/s3", false, true},
		{"s3", module + "/blocks", false, false},
		{"s3/s3http", "github.com/valyala/fasthttp", false, false},
		{"blocks", "github.com/cockroachdb/pebble/v2", false, true},
		{"cmd/grange/node", "github.com/cockroachdb/pebble/v2/vfs", false, true},
		{"clients/k2v", module + "/k2v", false, true},
		{"clients/k2v", module + "/clients/internal/sigv4", false, false},
		{"clients/k2v", "github.com/valyala/fasthttp", false, true},
		{"clients/internal/sigv4", "github.com/aws/aws-sdk-go-v2/aws/signer/v4", true, false},
		{"clients/internal/sigv4", "github.com/aws/aws-sdk-go-v2/aws/signer/v4", false, true},
		{"bench", module + "/clients/k2v", false, false},
		{"bench", module + "/cmd/grange/node", false, false},
		{"bench", module + "/k2v", false, false},
		{"bench", module + "/s3", false, true},
		{"cmd/grange", module + "/s3", false, false},
		{"cmd/grange/node", module + "/cmd/grange/internal/adminapi", false, false},
	}
	for _, tt := range tests {
		got := forbidden(tt.from, tt.imp, tt.test) != ""
		if got != tt.bad {
			t.Errorf("forbidden(%q, %q, test=%v) = %v, want %v", tt.from, tt.imp, tt.test, got, tt.bad)
		}
	}
}
