package telemetry

import "sort"

// sketch is a space-saving heavy-hitter summary (Metwally et al.): at most
// k counters, so memory is bounded however many distinct keys arrive. A
// key's count is over-estimated by at most err, the count of the counter it
// evicted; any key with a true weight above total/k is in the sketch. A
// min-heap on the counts makes every add O(log k); it is sifted by hand
// rather than through container/heap, whose interface calls were most of
// an add's time when every key is a newcomer.
type sketch struct {
	k       int
	entries map[string]*sketchEntry
	heap    minHeap
	total   int64
}

type sketchEntry struct {
	key        string
	count, err int64
	idx        int // position in the heap
}

func newSketch(k int) *sketch { return &sketch{k: k, entries: make(map[string]*sketchEntry, k)} }

// add counts w for key; a new key when the sketch is full takes over the
// smallest counter.
func (s *sketch) add(key string, w int64) {
	s.total += w
	if e, ok := s.entries[key]; ok {
		e.count += w
		s.heap.down(e.idx)
		return
	}
	if len(s.entries) < s.k {
		e := &sketchEntry{key: key, count: w, idx: len(s.heap)}
		s.entries[key] = e
		s.heap = append(s.heap, e)
		s.heap.up(e.idx)
		return
	}
	e := s.heap[0]
	delete(s.entries, e.key)
	e.key, e.err, e.count = key, e.count, e.count+w
	s.entries[key] = e
	s.heap.down(0)
}

// minHeap orders the entries by count, smallest first. Counts only grow,
// so an entry only ever moves down; a new one moves up from the end.
type minHeap []*sketchEntry

func (h minHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}

func (h minHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].count <= h[i].count {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h minHeap) down(i int) {
	for {
		least := i
		if l := 2*i + 1; l < len(h) && h[l].count < h[least].count {
			least = l
		}
		if r := 2*i + 2; r < len(h) && h[r].count < h[least].count {
			least = r
		}
		if least == i {
			return
		}
		h.swap(i, least)
		i = least
	}
}

// KeyCount is a key and its (estimated) weight.
type KeyCount struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// top merges sketches (counts add) and returns the n heaviest keys,
// heaviest first, ties by key.
func top(n int, sketches ...*sketch) []KeyCount {
	sum := map[string]int64{}
	for _, s := range sketches {
		for k, e := range s.entries {
			sum[k] += e.count
		}
	}
	out := make([]KeyCount, 0, len(sum))
	for k, c := range sum {
		out = append(out, KeyCount{k, c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key < out[j].Key
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
