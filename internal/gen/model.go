package gen

import (
	"encoding/hex"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Random streams. Every random decision comes from a PCG source seeded from
// (Seed, stream, index), so any part can be regenerated on its own.
const (
	streamUsers    = 1 // the user table
	streamSessions = 2 // sessions starting in an hour (index: absolute hour)
	streamHour     = 3 // per-event decisions of an arrival hour (index: absolute hour)
	streamPlan     = 4 // which objects are INT96, where bad objects go
	streamNasty    = 5 // nasty-case decisions of an arrival hour (index: absolute hour)
)

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func newRNG(seed int64, stream uint64, index int64) *rand.Rand {
	a := splitmix(uint64(seed) ^ splitmix(stream))
	b := splitmix(a ^ splitmix(uint64(index)+stream<<56))
	return rand.New(rand.NewPCG(a, b))
}

const (
	msHour = int64(time.Hour / time.Millisecond)
	msMin  = int64(time.Minute / time.Millisecond)
	msSec  = int64(time.Second / time.Millisecond)
	msDay  = 24 * msHour

	maxSessionSpan = 110 * msMin // so sessions of hour H end before H+3
	lookbackHours  = 2           // sessions of H-2..H may arrive in H
	userPeriod     = 3           // a user may start sessions only every third hour
	maxSessionLen  = 80
	signInShare    = 1.0 / 3 // share of anonymous users who sign in during the range

	maxPendingCloses = 16 // objects written but not yet closed (synced)
)

// Event names, by Zipf rank. Name 0 is screen_view on apps, page_view on web.
var eventNames = [...]string{
	"screen_view", "click", "scroll", "search", "view_item", "add_to_cart",
	"share", "login", "begin_checkout", "purchase", "remove_from_cart",
	"notification_open", "logout", "error",
}

const (
	nameSessionStart = uint8(len(eventNames))     // first event of every session
	nameLogin        = uint8(7)                   // index of "login"
	namePageView     = uint8(len(eventNames) + 1) // name 0 on web
)

func eventName(i uint8) string {
	switch i {
	case nameSessionStart:
		return "session_start"
	case namePageView:
		return "page_view"
	}
	return eventNames[i]
}

var countries = []string{"US", "GB", "DE", "IN", "BR", "FR", "JP", "CA", "AU", "NL", "ES", "MX", "SE", "NZ", "PL"}

var appVersions = []string{"4.12.0", "4.11.2", "4.11.0", "4.10.5", "4.9.1", "3.8.0"}

// cdf is a cumulative distribution over n outcomes with weights (i+1)^-s.
type cdf []float64

func zipfCDF(n int, s float64) cdf {
	c := make(cdf, n)
	sum := 0.0
	for i := range n {
		sum += math.Pow(float64(i+1), -s)
		c[i] = sum
	}
	for i := range c {
		c[i] /= sum
	}
	return c
}

func (c cdf) draw(r *rand.Rand) int {
	u := r.Float64()
	lo, hi := 0, len(c)-1
	for lo < hi {
		m := (lo + hi) / 2
		if c[m] < u {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// user is one person (rank = index: 0 is the most active).
type user struct {
	userID, deviceID string
	appVersion       string
	country          string
	platform         uint8
	product          uint8   // favourite product
	engagement       float32 // scales session length: busier users stay longer
	// signInHour: sessions starting in an earlier absolute hour are
	// anonymous (no user_id), the session of that hour signs in, later ones
	// carry user_id. math.MinInt64 for users signed in all along,
	// math.MaxInt64 for users who stay anonymous.
	signInHour int64
}

type generator struct {
	cfg       Config
	from, to  time.Time // UTC days
	firstHour int64     // absolute hour (Unix ms / msHour) of from
	endMs     int64     // end of the range (exclusive), Unix ms
	winLen    int64     // ms per object window
	perHour   []int     // good events per hour of day
	users     []user
	signIns   int64
	names     cdf
	products  cdf
	platforms cdf
	countries cdf
	versions  cdf
	int96     map[int]bool // object indexes (in the range) written with INT96 times
	closers   *errgroup.Group

	memoMu sync.Mutex
	memo   map[int64]*hourSessions
}

func newGenerator(cfg Config) *generator {
	g := &generator{cfg: cfg, from: day(cfg.From), to: day(cfg.To)}
	g.firstHour = g.from.UnixMilli() / msHour
	g.endMs = g.to.UnixMilli() + msDay
	g.winLen = msHour / int64(cfg.ObjectsPerHour)
	g.names = zipfCDF(len(eventNames), 1.0)
	g.products = zipfCDF(len(cfg.Products), 1.0)
	g.platforms = zipfCDF(len(cfg.Platforms), 0.7)
	g.countries = zipfCDF(len(countries), 1.1)
	g.versions = zipfCDF(len(appVersions), 1.3)
	g.perHour = hourCounts(cfg.EventsPerDay, cfg.ObjectsPerHour)
	g.makeUsers()
	g.int96 = g.planINT96()
	g.memo = map[int64]*hourSessions{}
	g.closers = new(errgroup.Group)
	g.closers.SetLimit(maxPendingCloses)
	return g
}

func (g *generator) hours() int { return int((g.endMs - g.from.UnixMilli()) / msHour) }

// hourCounts spreads n events over the 24 hours of a day along a daily
// curve (quietest at 04:00 UTC, busiest at 16:00), by largest remainder, with
// at least min per hour.
func hourCounts(n, minimum int) []int {
	w := make([]float64, 24)
	sum := 0.0
	for h := range w {
		w[h] = 0.35 + 0.65*(0.5-0.5*math.Cos(2*math.Pi*float64(h-4)/24))
		sum += w[h]
	}
	out := make([]int, 24)
	type rem struct {
		h int
		r float64
	}
	rems := make([]rem, 24)
	left := n
	for h := range w {
		x := float64(n) * w[h] / sum
		out[h] = int(x)
		left -= out[h]
		rems[h] = rem{h, x - float64(out[h])}
	}
	// Largest remainders first; ties by hour, so the result is stable.
	for left > 0 {
		best := -1
		for i, r := range rems {
			if best < 0 || r.r > rems[best].r {
				best = i
			}
		}
		out[rems[best].h]++
		rems[best].r = -1
		left--
	}
	for h := range out {
		out[h] = max(out[h], minimum)
	}
	return out
}

// hourCount is the number of good events of sessions starting in absolute
// hour h.
func (g *generator) hourCount(h int64) int {
	if h < g.firstHour || h >= g.firstHour+int64(g.hours()) {
		return 0
	}
	return g.perHour[(h-g.firstHour)%24]
}

func (g *generator) makeUsers() {
	c := g.cfg
	r := newRNG(c.Seed, streamUsers, 0)
	g.users = make([]user, c.Users)
	hours := int64(g.hours())
	var id [16]byte
	for i := range g.users {
		u := &g.users[i]
		fillRandom(r, id[:])
		u.userID = "u_" + hex.EncodeToString(id[:6])
		fillRandom(r, id[:])
		u.deviceID = uuidString(uuidV4(id))
		u.engagement = float32(0.6 + 2.4*math.Exp(-10*float64(i)/float64(c.Users)))
		u.platform = uint8(g.platforms.draw(r))
		u.product = uint8(g.products.draw(r))
		if ci := g.countries.draw(r); r.Float64() >= 0.05 {
			u.country = countries[ci]
		}
		vi := g.versions.draw(r)
		web := c.Platforms[u.platform] == "web"
		if !web || r.Float64() < 0.4 {
			u.appVersion = appVersions[vi]
			if web {
				u.appVersion = "web-" + u.appVersion
			}
		}
		u.signInHour = math.MinInt64
		if r.Float64() < c.AnonRate {
			u.signInHour = math.MaxInt64
			if s := r.Float64(); s < signInShare {
				// Sign in at the start of one of this user's eligible hours
				// within the range (see eligible).
				h := g.firstHour + int64(s/signInShare*float64(hours))
				for (h+int64(i))%userPeriod != 0 {
					h++
				}
				if h < g.firstHour+hours {
					u.signInHour = h
					g.signIns++
				}
			}
		}
	}
}

// session is one client session; its events are cev.
type session struct {
	user      int32
	product   uint8
	sessionID string // client session id, or ""
	signInSeq int32  // events with seq >= signInSeq carry user_id
	events    int32  // events of the session inside the range
}

// cev is a compact event: what the session model decides.
type cev struct {
	at   int64 // arrival = received_at, Unix ms
	sess int32 // index into the sessions of its start hour
	seq  int32 // position in the session
	name uint8
	hour uint8 // lookback of its start hour: 0 = this hour, 1 = the one before, ...
}

// sessionsOfHour generates the sessions that start in absolute hour h and
// all their events (which may arrive up to two hours later). It is a pure
// function of (cfg, h): every hour that needs them regenerates them.
func (g *generator) sessionsOfHour(h int64, sessions []session, events []cev) ([]session, []cev) {
	n := g.hourCount(h)
	if n == 0 {
		return sessions, events
	}
	c := g.cfg
	r := newRNG(c.Seed, streamSessions, h)
	hourStart := h * msHour

	// Eligible users of this hour: ranks k with (k+h) % userPeriod == 0.
	off := int((userPeriod - h%userPeriod) % userPeriod)
	nElig := (c.Users - off + userPeriod - 1) / userPeriod
	zipf := rand.NewZipf(r, 1.1, 5, uint64(nElig-1))
	used := make(map[int32]struct{}, 64)

	forced := c.ObjectsPerHour // one session opens in each object window first
	remaining := n
	for remaining > 0 {
		var start int64
		if forced > 0 {
			w := int64(c.ObjectsPerHour - forced)
			start = hourStart + w*g.winLen + r.Int64N(g.winLen-10*msSec)
			forced--
		} else {
			start = hourStart + r.Int64N(msHour)
		}
		var uid int32 = -1
		for range 10 {
			k := int32(int(zipf.Uint64())*userPeriod + off)
			if _, ok := used[k]; !ok {
				uid = k
				break
			}
		}
		if uid < 0 {
			uid = int32(r.IntN(nElig)*userPeriod + off)
		}
		used[uid] = struct{}{}
		u := &g.users[uid]

		length := 1
		if r.Float64() >= 0.15 { // 15% bounce
			length = 2 + int(r.ExpFloat64()*7*float64(u.engagement))
		}
		length = min(length, maxSessionLen, remaining-forced)

		s := session{user: uid, product: u.product}
		if r.Float64() >= 0.8 {
			s.product = uint8(r.IntN(len(c.Products)))
		}
		if r.Float64() < c.SessionIDRate {
			var id [16]byte
			fillRandom(r, id[:])
			s.sessionID = uuidString(uuidV4(id))
		}
		si := int32(len(sessions))
		t := start
		first := len(events)
		for i := range length {
			var name uint8
			if i == 0 {
				name = nameSessionStart
			} else {
				if r.Float64() < 0.07 {
					t += 3*msMin + r.Int64N(17*msMin) // a pause
				} else {
					t += 2*msSec + int64(r.ExpFloat64()*45*float64(msSec))
				}
				name = uint8(g.names.draw(r))
			}
			if t-start > maxSessionSpan || t >= g.endMs {
				break
			}
			events = append(events, cev{at: t, sess: si, seq: int32(i), name: name})
		}
		s.events = int32(len(events) - first)
		switch {
		case h < u.signInHour:
			s.signInSeq = math.MaxInt32
		case h == u.signInHour:
			s.signInSeq = s.events / 2
			events[first+int(s.signInSeq)].name = nameLogin
		default:
			s.signInSeq = 0
		}
		sessions = append(sessions, s)
		remaining -= int(s.events)
	}
	return sessions, events
}

// hourSessions is the memoised output of sessionsOfHour: the events of a
// session hour are needed by up to lookbackHours+1 arrival hours, which may
// run at the same time. Read-only once made.
type hourSessions struct {
	once     sync.Once
	sessions []session
	events   []cev
	refs     atomic.Int32 // arrival hours still to use it
}

// acquire returns the sessions starting in hour h, generating them once.
func (g *generator) acquire(h int64) *hourSessions {
	g.memoMu.Lock()
	e := g.memo[h]
	if e == nil {
		e = &hourSessions{}
		// Arrival hours h..h+lookbackHours of the range use it.
		lo, hi := max(h, g.firstHour), min(h+lookbackHours, g.firstHour+int64(g.hours())-1)
		e.refs.Store(int32(hi - lo + 1))
		g.memo[h] = e
	}
	g.memoMu.Unlock()
	e.once.Do(func() { e.sessions, e.events = g.sessionsOfHour(h, nil, nil) })
	return e
}

// release says one arrival hour is done with the sessions of hour h.
func (g *generator) release(h int64, e *hourSessions) {
	if e.refs.Add(-1) == 0 {
		g.memoMu.Lock()
		delete(g.memo, h)
		g.memoMu.Unlock()
	}
}

func fillRandom(r *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		x := r.Uint64()
		for j := i; j < len(b) && j < i+8; j++ {
			b[j] = byte(x)
			x >>= 8
		}
	}
}

func uuidV4(b [16]byte) [16]byte {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

// uuidV7 builds a version 7 UUID from a Unix ms time and randomness.
func uuidV7(ms int64, r *rand.Rand) [16]byte {
	var b [16]byte
	x, y := r.Uint64(), r.Uint64()
	for i := range 8 {
		b[8+i] = byte(y >> (8 * i))
	}
	b[0] = byte(ms >> 40)
	b[1] = byte(ms >> 32)
	b[2] = byte(ms >> 24)
	b[3] = byte(ms >> 16)
	b[4] = byte(ms >> 8)
	b[5] = byte(ms)
	b[6] = 0x70 | byte(x)&0x0f
	b[7] = byte(x >> 8)
	b[8] = b[8]&0x3f | 0x80
	return b
}

func uuidString(b [16]byte) string {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

// properties makes a small free-form map fitting the event name.
func properties(r *rand.Rand, name string) map[string]string {
	switch name {
	case "screen_view", "page_view":
		screens := [...]string{"home", "product", "cart", "search", "profile", "settings", "article"}
		return map[string]string{"screen": screens[r.IntN(len(screens))]}
	case "search":
		queries := [...]string{"shoes", "red dress", "gift", "laptop", "coffee", "how to"}
		return map[string]string{"query": queries[r.IntN(len(queries))], "results": strconv.Itoa(r.IntN(200))}
	case "view_item", "add_to_cart", "remove_from_cart", "purchase", "begin_checkout":
		cur := [...]string{"USD", "EUR", "GBP", "NZD"}
		return map[string]string{
			"item_id":  "sku-" + strconv.Itoa(1000+r.IntN(9000)),
			"price":    strconv.FormatFloat(float64(100+r.IntN(20000))/100, 'f', 2, 64),
			"currency": cur[r.IntN(len(cur))],
		}
	case "click":
		return map[string]string{"target": "button_" + strconv.Itoa(r.IntN(20))}
	case "error":
		return map[string]string{"code": strconv.Itoa(400 + r.IntN(104)), "message": "request failed"}
	}
	src := [...]string{"organic", "push", "email", "ad"}
	return map[string]string{"source": src[r.IntN(len(src))]}
}
