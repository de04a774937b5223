package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// The commit log (docs/design.md §Publish and commit). Generation N of a
// partition is committed by creating, with store.Create (put-if-absent),
// the entry
//
//	_commits/<table>/<partition>/<N, 20 digits>.json
//
// holding the run's whole manifest. Only one writer can create it. A writer
// commits Parent+1, Parent being the generation it read before it began
// (CommitAfter): if another writer committed since, the entry exists, or a
// higher one does, and the writer has lost (CommitLostError); it never
// publishes over the winner. The current run of a partition is the run the
// highest entry names (CurrentAt). The run folder's _manifest.json is a copy
// written after the entry, for tools that look there.
//
// Stores written before the log existed have manifests only in run
// folders: their highest generation (then the larger run id) is current
// until the partition's next commit, which continues its generations in
// the log. Older entries are pruned by the commit after next; a writer that
// recreates a pruned generation finds a higher one and withdraws its entry.

// CommitPrefix is the folder of the commit log.
const CommitPrefix = "_commits/"

// LogPrefix is the folder of one partition's commit log.
func LogPrefix(table, part string) string { return CommitPrefix + table + "/" + part + "/" }

// logKey is the key of generation gen's entry.
func logKey(table, part string, gen int64) string {
	return fmt.Sprintf("%s%020d.json", LogPrefix(table, part), gen)
}

// genOf parses an entry's key (below prefix) into its generation.
func genOf(prefix, key string) (int64, bool) {
	name, ok := strings.CutSuffix(strings.TrimPrefix(key, prefix), ".json")
	if !ok || strings.Contains(name, "/") {
		return 0, false
	}
	g, err := strconv.ParseInt(name, 10, 64)
	return g, err == nil && g > 0
}

// logGens lists the generations in a partition's log, highest first.
func logGens(ctx context.Context, st store.Store, table, part string) ([]int64, error) {
	prefix := LogPrefix(table, part)
	objs, err := st.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var gens []int64
	for _, o := range objs {
		if g, ok := genOf(prefix, o.Key); ok {
			gens = append(gens, g)
		}
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] > gens[j] })
	return gens, nil
}

// readEntry reads generation gen's entry.
func readEntry(ctx context.Context, st store.Store, table, part string, gen int64) (*Manifest, error) {
	return readManifestAt(ctx, st, logKey(table, part, gen))
}

// ErrCommitLost is wrapped by CommitLostError.
var ErrCommitLost = errors.New("another writer committed first")

// CommitLostError is returned by CommitAfter when the generation it was to
// create is taken: another writer committed after the build read its
// parent. Nothing was published.
type CommitLostError struct {
	Table, Part string
	Generation  int64     // the generation the commit tried to create
	Winner      *Manifest // the partition's current commit, if it could be read
}

func (e *CommitLostError) Error() string {
	who := "another run"
	if e.Winner != nil {
		who = fmt.Sprintf("run %s (generation %d)", e.Winner.Run, e.Winner.Generation)
	}
	return fmt.Sprintf("commit %s generation %d: %s committed first; this build was based on an older generation: %v",
		PartPrefix(e.Table, e.Part), e.Generation, who, ErrCommitLost)
}

func (e *CommitLostError) Unwrap() error { return ErrCommitLost }

// Head returns the generation of a partition's current commit, 0 if it has
// none: what a build reads before it begins, to pass to CommitAfter.
func Head(ctx context.Context, st store.Store, table, part string) (int64, error) {
	m, err := CurrentAt(ctx, st, table, part)
	if errors.Is(err, store.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return m.Generation, nil
}

// Heads returns the generation of the highest log entry of every partition
// of table that has one, in one listing. A partition it lacks has no log
// yet (never committed, or written before the log existed): its parent is
// 0, with which CommitAfter continues the generations of its manifests.
func Heads(ctx context.Context, st store.Store, table string) (map[string]int64, error) {
	prefix := CommitPrefix + table + "/"
	objs, err := st.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, o := range objs {
		part, rest, ok := strings.Cut(strings.TrimPrefix(o.Key, prefix), "/")
		if !ok {
			continue
		}
		if g, ok := genOf("", rest); ok && g > out[part] {
			out[part] = g
		}
	}
	return out, nil
}

// Commit commits m's run on the partition's current generation, read now:
// CommitAfter(Head). It fences nothing a concurrent writer did before it
// read the head; it is for tools and tests that are the partition's only
// writer. The job commits with CommitAfter.
func Commit(ctx context.Context, st store.Store, m *Manifest) error {
	part, err := m.partKey()
	if err != nil {
		return err
	}
	parent, err := Head(ctx, st, m.Table, part)
	if err != nil {
		return err
	}
	return CommitAfter(ctx, st, m, parent)
}

// CommitAfter makes m's run the current run of its partition, as
// generation parent+1, parent being the generation the build read before it
// began (Head, Heads; 0 if the partition had no commit). It creates the log
// entry of that generation, conditionally: if it exists, or a higher one
// does, another writer committed since parent, and CommitAfter returns a
// *CommitLostError and publishes nothing. On success it writes the run
// folder's manifest copy and prunes entries older than parent. It fails
// with store.ErrExists if the run was committed before. m.Generation and
// m.Parent are set.
func CommitAfter(ctx context.Context, st store.Store, m *Manifest, parent int64) error {
	part, err := m.partKey()
	if err != nil {
		return err
	}
	copyKey := RunPrefixAt(m.Table, part, m.Run) + ManifestName
	if _, err := st.Stat(ctx, copyKey); err == nil {
		return fmt.Errorf("commit %s: %w", copyKey, store.ErrExists)
	} else if !errors.Is(err, store.ErrNotExist) {
		return err
	}
	gens, err := logGens(ctx, st, m.Table, part)
	if err != nil {
		return err
	}
	lost := func(gen int64) error {
		e := &CommitLostError{Table: m.Table, Part: part, Generation: gen}
		if w, err := CurrentAt(ctx, st, m.Table, part); err == nil {
			e.Winner = w
		}
		return e
	}
	gen := parent + 1
	if parent == 0 && len(gens) == 0 {
		// No log yet: continue the generations of manifests written
		// before the log existed, if any.
		if ms, err := legacyCommitted(ctx, st, m.Table, part, nil); err == nil {
			gen = ms[0].Generation + 1
		} else if !errors.Is(err, store.ErrNotExist) {
			return err
		}
		// A manifest seen there may be the copy a writer with the log
		// made since the listing above: a log that exists now says so,
		// and that this writer, which saw none, lost.
		if gens, err = logGens(ctx, st, m.Table, part); err != nil {
			return err
		}
		if len(gens) > 0 {
			return lost(gen)
		}
	}
	if len(gens) > 0 && gens[0] >= gen {
		return lost(gen)
	}
	m.Parent, m.Generation = parent, gen
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	key := logKey(m.Table, part, gen)
	if err := st.Create(ctx, key, b); errors.Is(err, store.ErrExists) {
		return lost(gen)
	} else if err != nil {
		return fmt.Errorf("commit %s: %w", key, err)
	}
	// A generation pruned from the log can be created again by a writer
	// paused long enough; a higher entry then says it lost.
	if gens, err = logGens(ctx, st, m.Table, part); err != nil {
		return err
	}
	if gens[0] > gen {
		if err := st.Delete(ctx, key); err != nil {
			return err
		}
		return lost(gen)
	}
	if err := st.Create(ctx, copyKey, b); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("commit %s: %w", copyKey, err)
	}
	for _, g := range gens {
		if g < parent {
			_ = st.Delete(ctx, logKey(m.Table, part, g)) // best effort: the next commit prunes it
		}
	}
	return nil
}

// Current returns the manifest of the current run of day d's partition of
// table, or store.ErrNotExist if it was never published.
func Current(ctx context.Context, st store.Store, table string, d day.Day) (*Manifest, error) {
	return CurrentAt(ctx, st, table, DayPart(d))
}

// CurrentAt returns the manifest of the current run of a partition: the
// one its highest log entry names, or, in a partition written before the
// log existed, its manifest of the highest generation (then the larger run
// id). Run folders without a commit are invisible. It returns
// store.ErrNotExist if the partition was never published. Every reader's
// "current" comes from here (Committed, CurrentFiles, Visible).
func CurrentAt(ctx context.Context, st store.Store, table, part string) (*Manifest, error) {
	for attempt := 0; ; attempt++ {
		gens, err := logGens(ctx, st, table, part)
		if err != nil {
			return nil, err
		}
		if len(gens) == 0 {
			ms, err := legacyCommitted(ctx, st, table, part, nil)
			if err != nil {
				return nil, err
			}
			return ms[0], nil
		}
		m, err := readEntry(ctx, st, table, part, gens[0])
		if errors.Is(err, store.ErrNotExist) && attempt < 3 {
			continue // a lost writer withdrew its entry since the listing
		}
		return m, err
	}
}

// Committed returns the manifests of every committed run of a partition,
// the current run (CurrentAt) first and then each older one by generation:
// the runs the log names, and the runs whose folders hold a manifest,
// written before the log existed or pruned from it since. It returns
// store.ErrNotExist if the partition has no committed run.
func Committed(ctx context.Context, st store.Store, table, part string) ([]*Manifest, error) {
	head, err := CurrentAt(ctx, st, table, part)
	if err != nil {
		return nil, err
	}
	gens, err := logGens(ctx, st, table, part)
	if err != nil {
		return nil, err
	}
	ms := []*Manifest{head}
	seen := map[string]bool{head.Run: true}
	for _, g := range gens {
		if g >= head.Generation {
			continue
		}
		m, err := readEntry(ctx, st, table, part, g)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if _, err := st.Stat(ctx, RunPrefixAt(table, part, m.Run)+ManifestName); err == nil && !seen[m.Run] {
			// An older entry counts while its run is there (its copy is
			// deleted last).
			ms = append(ms, m)
			seen[m.Run] = true
		}
	}
	older, err := legacyCommitted(ctx, st, table, part, seen)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return nil, err
	}
	for _, m := range older {
		if m.Generation < head.Generation {
			ms = append(ms, m)
		}
	}
	sort.SliceStable(ms[1:], func(i, j int) bool { return newer(ms[1+i], ms[1+j]) })
	return ms, nil
}

// newer reports whether manifest a was committed after b: a higher
// generation, or (for runs committed before generations existed) the
// larger run id.
func newer(a, b *Manifest) bool {
	if a.Generation != b.Generation {
		return a.Generation > b.Generation
	}
	return a.Run > b.Run
}

// legacyCommitted returns the manifests in the partition's run folders,
// except those of runs in skip, newest first (by newer), or
// store.ErrNotExist if there are none.
func legacyCommitted(ctx context.Context, st store.Store, table, part string, skip map[string]bool) ([]*Manifest, error) {
	all, committed, _, err := runs(ctx, st, table, part)
	if err != nil {
		return nil, err
	}
	var ms []*Manifest
	for _, run := range all {
		if !committed[run] || skip[run] {
			continue
		}
		m, err := ReadManifest(ctx, st, table, part, run)
		if errors.Is(err, store.ErrNotExist) {
			continue // deleted by a cleanup since the listing
		}
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("%s%s: %w", PartPrefix(table, part), ManifestName, store.ErrNotExist)
	}
	sort.SliceStable(ms, func(i, j int) bool { return newer(ms[i], ms[j]) })
	return ms, nil
}

// Covers reports whether inputs include every input of want that is still
// in st as it was (same key and ETag): a build from inputs is then at least
// as new as one from want. Inputs of want that are gone or changed since do
// not count; each is checked with one Stat.
func Covers(ctx context.Context, st store.Store, inputs, want []Input) (bool, error) {
	have := make(map[Input]bool, len(inputs))
	for _, in := range inputs {
		have[Input{Key: in.Key, ETag: in.ETag}] = true
	}
	for _, in := range want {
		if have[Input{Key: in.Key, ETag: in.ETag}] {
			continue
		}
		o, err := st.Stat(ctx, in.Key)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		if o.ETag == in.ETag {
			return false, nil
		}
	}
	return true, nil
}
