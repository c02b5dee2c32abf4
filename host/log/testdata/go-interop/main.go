// Checks the artifacts of `cargo run -p flowgate-log --example
// interop_sample -- DIR` with Go's golang.org/x/mod/sumdb/note and
// sumdb/tlog: an implementation of C2SP signed notes and RFC 6962/9162
// proofs that shares no code with ours.
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run main.go DIR
//
// (Debian: apt-get install golang-go golang-golang-x-mod-dev.)
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Receipt    string   `json:"receipt"`
	Index      int64    `json:"index"`
	TreeSize   int64    `json:"tree_size"`
	Proof      []string `json:"proof"`
	Checkpoint string   `json:"checkpoint"`
}

type consistency struct {
	OldSize    int64    `json:"old_size"`
	NewSize    int64    `json:"new_size"`
	Proof      []string `json:"proof"`
	Checkpoint string   `json:"checkpoint"`
}

func must(err error) {
	if err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}

func hash(b64 string) tlog.Hash {
	b, err := base64.StdEncoding.DecodeString(b64)
	must(err)
	var h tlog.Hash
	if len(b) != len(h) {
		must(fmt.Errorf("hash of %d bytes", len(b)))
	}
	copy(h[:], b)
	return h
}

// open verifies a checkpoint note with the log key and reads its body.
func open(verifiers note.Verifiers, text string) (string, int64, tlog.Hash) {
	n, err := note.Open([]byte(text), verifiers)
	must(err)
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	size, err := strconv.ParseInt(lines[1], 10, 64)
	must(err)
	return lines[0], size, hash(lines[2])
}

func main() {
	dir := os.Args[1]
	vkey, err := os.ReadFile(filepath.Join(dir, "log.vkey"))
	must(err)
	verifier, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	must(err)
	verifiers := note.VerifierList(verifier)
	checked := 0
	files, _ := filepath.Glob(filepath.Join(dir, "inclusion-*.json"))
	for _, file := range files {
		var p inclusion
		data, err := os.ReadFile(file)
		must(err)
		must(json.Unmarshal(data, &p))
		_, size, root := open(verifiers, p.Checkpoint)
		if size != p.TreeSize {
			must(fmt.Errorf("%s: size %d, checkpoint %d", file, p.TreeSize, size))
		}
		leaf, err := base64.StdEncoding.DecodeString(p.Receipt)
		must(err)
		var proof tlog.RecordProof
		for _, h := range p.Proof {
			proof = append(proof, hash(h))
		}
		must(tlog.CheckRecord(proof, size, root, p.Index, tlog.RecordHash(leaf)))
		// A tampered leaf must fail.
		if tlog.CheckRecord(proof, size, root, p.Index, tlog.RecordHash(append(leaf, 'x'))) == nil {
			must(fmt.Errorf("%s: a tampered leaf verified", file))
		}
		checked++
	}
	files, _ = filepath.Glob(filepath.Join(dir, "consistency-*.json"))
	for _, file := range files {
		var p consistency
		data, err := os.ReadFile(file)
		must(err)
		must(json.Unmarshal(data, &p))
		_, newSize, newRoot := open(verifiers, p.Checkpoint)
		old, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("checkpoint-%d", p.OldSize)))
		must(err)
		_, oldSize, oldRoot := open(verifiers, string(old))
		var proof tlog.TreeProof
		for _, h := range p.Proof {
			proof = append(proof, hash(h))
		}
		if oldSize < newSize {
			must(tlog.CheckTree(proof, newSize, newRoot, oldSize, oldRoot))
		} else if oldRoot != newRoot {
			must(fmt.Errorf("%s: same size, different roots", file))
		}
		checked++
	}
	fmt.Printf("ok: %d proofs and their checkpoints verified by golang.org/x/mod/sumdb\n", checked)
}
