package checks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/socioprophet/sourceos/internal/catalog"
)

// loadCatalog reads the catalog of the tree: Options.Catalog, else
// catalog.json at the root.
func loadCatalog(opts Options) (*catalog.Catalog, error) {
	path := opts.Catalog
	if path == "" {
		path = filepath.Join(opts.Root, catalog.FileName)
	}
	return catalog.Load(path)
}

// checkCatalog is check:catalog: the catalog parses and is consistent
// (catalog.Parse), and the channel manifests ship exactly what it says
// each channel ships.
func checkCatalog(opts Options, cat *catalog.Catalog, catErr error) Result {
	res := Result{Check: CheckCatalog}
	if catErr != nil {
		res.Failures = append(res.Failures, Failure{Check: CheckCatalog, File: catalog.FileName, Message: catErr.Error()})
		return res
	}
	res.Checked = 1 + len(cat.Editions) + len(cat.Artifacts)
	res.Failures = append(res.Failures, checkChannels(opts.Root, cat)...)
	return res
}

// checkChannels: each channels/<name>.json lists, in artifact_set,
// exactly the ids of the instances the catalog ships on that channel.
func checkChannels(root string, cat *catalog.Catalog) []Failure {
	files, _ := filepath.Glob(filepath.Join(root, "channels", "*.json"))
	sort.Strings(files)
	var out []Failure
	for _, f := range files {
		rel := "channels/" + filepath.Base(f)
		data, err := os.ReadFile(f)
		if err != nil {
			continue // check:manifests reports it
		}
		var doc struct {
			Channel     string   `json:"channel"`
			ArtifactSet []string `json:"artifact_set"`
		}
		if json.Unmarshal(data, &doc) != nil {
			continue // check:manifests reports it
		}
		want := shippedIDs(cat, doc.Channel)
		line := PointerLine(data, "/artifact_set")
		for i, id := range doc.ArtifactSet {
			line := PointerLine(data, fmt.Sprintf("/artifact_set/%d", i))
			if !slices.Contains(cat.IDs(), id) {
				out = append(out, Failure{Check: CheckCatalog, File: rel, Line: line, Subject: "artifact_set",
					Message: fmt.Sprintf("%s is not an artifact of the catalog (mage catalog:matrix lists them)", id)})
			} else if !slices.Contains(want, id) {
				out = append(out, Failure{Check: CheckCatalog, File: rel, Line: line, Subject: "artifact_set",
					Message: fmt.Sprintf("the catalog does not ship %s on channel %s (its artifact's channels)", id, doc.Channel)})
			}
		}
		for _, id := range want {
			if !slices.Contains(doc.ArtifactSet, id) {
				out = append(out, Failure{Check: CheckCatalog, File: rel, Line: line, Subject: "artifact_set",
					Message: fmt.Sprintf("the catalog ships %s on channel %s but the manifest does not list it", id, doc.Channel)})
			}
		}
	}
	return out
}

// shippedIDs are the ids the catalog ships on a channel, once each.
func shippedIDs(cat *catalog.Catalog, channel string) []string {
	var ids []string
	for _, in := range cat.Shipped(channel) {
		if !slices.Contains(ids, in.ID()) {
			ids = append(ids, in.ID())
		}
	}
	slices.Sort(ids)
	return ids
}

// matrixKeys are the matrix keys whose values the catalog decides, and
// the values it allows.
func matrixKeys(cat *catalog.Catalog) map[string][]string {
	kinds := make([]string, 0, len(catalog.Kinds))
	for _, k := range catalog.Kinds {
		kinds = append(kinds, string(k))
	}
	return map[string][]string{"edition": cat.EditionNames(), "arch": catalog.Arches, "id": cat.IDs(), "kind": kinds}
}

// checkMatrices: a job whose matrix lists editions lists exactly the
// catalog's; ids, kinds and arches must be the catalog's. A matrix built
// from `mage catalog:matrix` (fromJSON) follows the catalog by itself.
func checkMatrices(wfs []Workflow, cat *catalog.Catalog) []Problem {
	allowed := matrixKeys(cat)
	var out []Problem
	for _, w := range wfs {
		for _, name := range sortedJobs(w.AST) {
			values := matrixValues(w.AST.Jobs[name])
			for _, key := range sortedKeys(values) {
				ok, known := allowed[key]
				if !known {
					continue
				}
				got := uniqueValues(values[key])
				for _, v := range got {
					if !slices.Contains(ok, v) {
						out = append(out, Problem{File: w.File, Kind: "catalog-matrix",
							Message: fmt.Sprintf("job %s: matrix %s %q is not the catalog's (%s)", name, key, v, strings.Join(ok, ", "))})
					}
				}
				if key == "edition" && !slices.Equal(got, ok) {
					out = append(out, Problem{File: w.File, Kind: "catalog-matrix",
						Message: fmt.Sprintf("job %s: matrix editions %v differ from the catalog's %v; use mage catalog:matrix", name, got, ok)})
				}
			}
		}
	}
	return out
}

func uniqueValues(vs []string) []string {
	out := slices.Clone(vs)
	slices.Sort(out)
	return slices.Compact(out)
}
