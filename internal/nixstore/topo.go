package nixstore

import (
	"fmt"
	"sort"
)

// TopoSort orders infos so that every path comes after the paths it
// references (self-references and references outside the set are
// ignored). Ties are broken by path, so the order is deterministic. A cycle
// is an error (Nix does not allow one).
func TopoSort(infos []PathInfo) ([]PathInfo, error) {
	byPath := make(map[string]int, len(infos))
	for i, pi := range infos {
		byPath[pi.Path] = i
	}
	order := make([]int, 0, len(infos))
	state := make([]uint8, len(infos)) // 0 new, 1 visiting, 2 done
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("reference cycle through %s", infos[i].Path)
		case 2:
			return nil
		}
		state[i] = 1
		refs := append([]string(nil), infos[i].References...)
		sort.Strings(refs)
		for _, r := range refs {
			if j, ok := byPath[r]; ok && j != i {
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		state[i] = 2
		order = append(order, i)
		return nil
	}
	idx := make([]int, len(infos))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return infos[idx[a]].Path < infos[idx[b]].Path })
	for _, i := range idx {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	out := make([]PathInfo, len(order))
	for k, i := range order {
		out[k] = infos[i]
	}
	return out, nil
}
