package velocloud

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// state is one enterprise's position in its event stream: what the
// checkpoint holds.
type state struct {
	// cursor: every window before it has been read completely. The next
	// poll reads [cursor-lookback, now].
	cursor time.Time
	// floor: nothing before it is ever asked for (the first start's
	// backfill limit).
	floor time.Time
	// seen holds the events already published whose eventTime may still
	// be returned by a later, overlapping window: VCO event id (or, for
	// an event without a usable id, a hash of its JSON) → eventTime in
	// Unix milliseconds.
	seen map[int64]int64
	// sizeAtPrune is len(seen) after the last prune.
	sizeAtPrune int
}

// maxSeenPersisted bounds the ids a checkpoint keeps (about 7 bytes each
// before base64), so that it stays far below Kafka's default 1 MiB record
// limit. An enterprise with more events than this within one lookback
// keeps the newest; after a restart the others may be published again
// (at-least-once: the ndjson stage drops them by event id).
const maxSeenPersisted = 60000

// checkpointVersion is the format of checkpoint values.
const checkpointVersion = 1

// checkpointJSON is the checkpoint value: JSON, so that `vpipe tap
// vpipe.checkpoints` shows it, with the seen ids packed (sorted, delta
// varints, base64) to keep it small.
type checkpointJSON struct {
	V          int       `json:"v"`
	Enterprise string    `json:"enterprise,omitempty"` // name when written, for people reading it
	Cursor     time.Time `json:"cursor"`
	Floor      time.Time `json:"floor"`
	Seen       string    `json:"seen,omitempty"`
	SeenCount  int       `json:"seen_count,omitempty"`
}

// marshal encodes st as a checkpoint value.
func (st *state) marshal(enterprise string) []byte {
	type entry struct{ id, ms int64 }
	entries := make([]entry, 0, len(st.seen))
	for id, ms := range st.seen {
		entries = append(entries, entry{id, ms})
	}
	if len(entries) > maxSeenPersisted {
		slices.SortFunc(entries, func(a, b entry) int { return cmpInt(b.ms, a.ms) })
		entries = entries[:maxSeenPersisted]
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmpInt(a.id, b.id) })
	base := st.cursor.UnixMilli()
	buf := make([]byte, 0, len(entries)*8)
	var prev int64
	for i, e := range entries {
		if i == 0 {
			buf = binary.AppendVarint(buf, e.id)
		} else {
			buf = binary.AppendUvarint(buf, uint64(e.id-prev))
		}
		prev = e.id
		buf = binary.AppendVarint(buf, e.ms-base)
	}
	cj := checkpointJSON{V: checkpointVersion, Enterprise: enterprise, Cursor: st.cursor.UTC(), Floor: st.floor.UTC(), SeenCount: len(entries)}
	if len(buf) > 0 {
		cj.Seen = base64.StdEncoding.EncodeToString(buf)
	}
	out, _ := json.Marshal(cj)
	return out
}

// unmarshalState decodes a checkpoint value.
func unmarshalState(data []byte) (*state, error) {
	var cj checkpointJSON
	if err := json.Unmarshal(data, &cj); err != nil {
		return nil, fmt.Errorf("decode checkpoint: %w", err)
	}
	if cj.V != checkpointVersion {
		return nil, fmt.Errorf("decode checkpoint: version %d, want %d", cj.V, checkpointVersion)
	}
	st := &state{cursor: cj.Cursor, floor: cj.Floor, seen: make(map[int64]int64, cj.SeenCount)}
	raw, err := base64.StdEncoding.DecodeString(cj.Seen)
	if err != nil {
		return nil, fmt.Errorf("decode checkpoint seen ids: %w", err)
	}
	base := st.cursor.UnixMilli()
	var prev int64
	for i := 0; len(raw) > 0; i++ {
		var id int64
		if i == 0 {
			v, n := binary.Varint(raw)
			if n <= 0 {
				return nil, errors.New("decode checkpoint seen ids: bad varint")
			}
			id, raw = v, raw[n:]
		} else {
			d, n := binary.Uvarint(raw)
			if n <= 0 {
				return nil, errors.New("decode checkpoint seen ids: bad varint")
			}
			id, raw = prev+int64(d), raw[n:]
		}
		ms, n := binary.Varint(raw)
		if n <= 0 {
			return nil, errors.New("decode checkpoint seen ids: bad varint")
		}
		raw = raw[n:]
		st.seen[id] = base + ms
		prev = id
	}
	st.sizeAtPrune = len(st.seen)
	return st, nil
}

// prune forgets the seen events older than before: no window will ask for
// them again. It does the work only when the set doubled since the last
// prune or force is set, so that its cost stays proportional to the
// events added.
func (st *state) prune(before time.Time, force bool) {
	if !force && len(st.seen) < 2*st.sizeAtPrune+1024 {
		return
	}
	b := before.UnixMilli()
	for id, ms := range st.seen {
		if ms < b {
			delete(st.seen, id)
		}
	}
	st.sizeAtPrune = len(st.seen)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
