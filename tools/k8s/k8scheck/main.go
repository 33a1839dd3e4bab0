// Command k8scheck decodes Kubernetes manifests strictly against the API types client-go
// knows: an unknown or misspelt field, a duplicate field or a value of the wrong type is
// an error, as the API server would report it. Kinds it has no types for (CRDs such as
// ServiceMonitor) are listed as unchecked. It reads the files named, or stdin.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

func main() {
	dec := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var inputs []string
	if len(os.Args) > 1 {
		inputs = os.Args[1:]
	} else {
		inputs = []string{"-"}
	}
	failed := false
	for _, name := range inputs {
		var r io.Reader = os.Stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			defer f.Close()
			r = f
		}
		yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
		for i := 0; ; i++ {
			doc, err := yr.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: document %d: %v\n", name, i, err)
				os.Exit(2)
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			obj, gvk, err := dec.Decode(doc, nil, nil)
			switch {
			case err != nil && runtime.IsNotRegisteredError(err):
				fmt.Printf("unchecked %s: %v\n", name, err)
			case err != nil:
				fmt.Printf("error %s: document %d: %v\n", name, i, err)
				failed = true
			default:
				meta, _ := obj.(interface{ GetName() string })
				n := ""
				if meta != nil {
					n = meta.GetName()
				}
				fmt.Printf("ok %s/%s %s\n", gvk.GroupVersion(), gvk.Kind, n)
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}

// stripComments drops comment-only lines, so a document of comments counts as empty.
func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}
