// Command ivrkit-goclient is the Go test caller of ivrkit's end-to-end suite.
//
// It joins a LiveKit room with server-sdk-go, sends DTMF the way a Go
// application does (PublishDataPacket(&livekit.SipDTMF{...})), and reports
// every SipDTMF packet it receives. It speaks the same JSON-lines protocol as
// tests/stack/caller.py, so one Python wrapper drives both:
//
//	stdin : {"cmd":"dtmf","digit":"1","code":1,"id":7}  {"cmd":"leave"}
//	stdout: {"event":"connected",...} {"event":"dtmf",...} {"event":"dtmf_sent","t0":...,...}
//	        {"event":"participant_joined",...} {"event":"track_published",...} {"event":"left"}
//
// At connect it publishes a silent microphone track (-mic=false: none), as a phone does.
//
// With -listen it subscribes to every remote audio track and tells sound from silence by the
// size of each Opus packet's payload, without decoding (what lets one box host 100+ callers
// beside the worker: bench/concurrency.py). An Opus encoder spends a few bytes on a frame of
// silence and tens to hundreds on a tone or a voice, so a packet of at least -sound-bytes is
// sound. It reports one line per sound, when its first packet arrives and when it ended:
//
//	{"event":"onset","t":...,"participant":"agent-...","bytes":97,"seq":1234}
//	{"event":"sound_end","t":...,"participant":"agent-...","start":...,"end":...}
//
// `end` is the arrival of the first of -quiet-packets silent packets in a row, or 20 ms after
// the last packet when the track paused -gap seconds (libwebrtc's Opus encoder runs with DTX:
// in silence it sends a 1-3 byte packet every 400 ms, so a pause is the usual end).
// At leave, a "listen_summary" per track counts packets by payload size, so a run can check
// the threshold against what the encoder actually sent.
// The URL comes from -url, the access token from the LIVEKIT_TOKEN
// environment variable (kept off the process list).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"golang.org/x/sys/unix"
)

// out serialises JSON lines on stdout: callbacks run on SDK goroutines.
type out struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (o *out) emit(event string, fields map[string]any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	line := map[string]any{"event": event, "t": monotonic()}
	for k, v := range fields {
		line[k] = v
	}
	_ = o.enc.Encode(line)
}

// monotonic returns CLOCK_MONOTONIC in seconds: the same clock as Python's time.monotonic()
// in the test process and caller.py, so event times compare across processes.
func monotonic() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// command is one JSON line read from stdin.
type command struct {
	Cmd   string  `json:"cmd"`
	ID    *int    `json:"id,omitempty"`
	Digit string  `json:"digit"`
	Code  *uint32 `json:"code,omitempty"`
}

// rfc4733 maps a key to its RFC 4733 event code; A-D go out lowercase.
var rfc4733 = map[string]uint32{
	"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8, "9": 9,
	"*": 10, "#": 11, "a": 12, "b": 13, "c": 14, "d": 15,
}

func main() {
	url := flag.String("url", "", "LiveKit server URL (ws://host:7880)")
	mic := flag.Bool("mic", true, "publish a (silent) microphone track at connect, as a phone does")
	listen := flag.Bool("listen", false, "subscribe to remote audio tracks and report sound onsets and ends (no decoding)")
	soundBytes := flag.Int("sound-bytes", 20, "with -listen: an Opus payload of at least this many bytes is sound")
	quietPackets := flag.Int("quiet-packets", 3, "with -listen: this many silent packets in a row end a sound")
	gap := flag.Float64("gap", 0.1, "with -listen: no packet for this many seconds ends a sound")
	flag.Parse()
	if *listen && os.Getenv("GOMAXPROCS") == "" {
		// One call needs one thread: bench/concurrency.py runs 100+ of these processes, and each
		// runtime's idle processors spinning for work cost a third more CPU (measured at 25 calls).
		runtime.GOMAXPROCS(1)
	}
	token := os.Getenv("LIVEKIT_TOKEN")
	o := &out{enc: json.NewEncoder(os.Stdout)}
	if *url == "" || token == "" {
		o.emit("error", map[string]any{"message": "need -url and LIVEKIT_TOKEN in the environment"})
		os.Exit(2)
	}

	done := make(chan struct{})
	var once sync.Once
	closeDone := func() { once.Do(func() { close(done) }) }

	cb := lksdk.NewRoomCallback()
	cb.OnDataPacket = func(data lksdk.DataPacket, params lksdk.DataReceiveParams) {
		if d, ok := data.(*livekit.SipDTMF); ok {
			var participant any
			if params.SenderIdentity != "" {
				participant = params.SenderIdentity
			}
			o.emit("dtmf", map[string]any{"code": d.Code, "digit": d.Digit, "participant": participant})
		}
	}
	cb.OnParticipantConnected = func(p *lksdk.RemoteParticipant) {
		o.emit("participant_joined", map[string]any{"participant": p.Identity()})
	}
	cb.OnParticipantDisconnected = func(p *lksdk.RemoteParticipant) {
		o.emit("participant_left", map[string]any{"participant": p.Identity()})
	}
	var listeners listening
	cb.OnTrackPublished = func(pub *lksdk.RemoteTrackPublication, p *lksdk.RemoteParticipant) {
		o.emit("track_published", map[string]any{"participant": p.Identity(), "track": pub.SID(), "kind": string(pub.Kind())})
		if *listen && pub.Kind() == lksdk.TrackKindAudio {
			go subscribe(o, pub)
		}
	}
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, p *lksdk.RemoteParticipant) {
		if !*listen || track.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		l := &listener{o: o, participant: p.Identity(), track: pub.SID(), soundBytes: *soundBytes,
			quietPackets: *quietPackets, gap: *gap, sizes: map[int]int{}}
		listeners.add(l)
		go l.run(track)
	}
	cb.OnDisconnected = func() {
		o.emit("disconnected", nil)
		closeDone()
	}

	room, err := lksdk.ConnectToRoomWithToken(*url, token, cb, lksdk.WithAutoSubscribe(false))
	if err != nil {
		o.emit("error", map[string]any{"message": fmt.Sprintf("connect failed: %v", err)})
		os.Exit(1)
	}
	if *mic {
		// livekit-server announces a participant that publishes nothing only in its 3 s batch of
		// subscriber updates, and Python/Rust receivers drop data (DTMF) from participants they
		// do not know yet; a publisher is announced at once. No samples are ever written.
		track, err := lksdk.NewLocalSampleTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
		if err == nil {
			_, err = room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{
				Name: "go-caller-mic", Source: livekit.TrackSource_MICROPHONE,
			})
		}
		if err != nil {
			o.emit("error", map[string]any{"message": fmt.Sprintf("publishing the microphone track failed: %v", err)})
			room.Disconnect()
			os.Exit(1)
		}
	}
	remote := []string{}
	for _, p := range room.GetRemoteParticipants() {
		remote = append(remote, p.Identity())
		if *listen {
			for _, pub := range p.TrackPublications() {
				if rpub, ok := pub.(*lksdk.RemoteTrackPublication); ok && pub.Kind() == lksdk.TrackKindAudio {
					go subscribe(o, rpub)
				}
			}
		}
	}
	o.emit("connected", map[string]any{
		"identity": room.LocalParticipant.Identity(), "room": room.Name(), "participants": remote, "mic": *mic,
	})

	go func() {
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() {
			var c command
			if err := json.Unmarshal(scanner.Bytes(), &c); err != nil {
				o.emit("error", map[string]any{"message": fmt.Sprintf("bad command line: %v", err)})
				continue
			}
			if !handle(room, o, c) {
				break
			}
		}
		closeDone() // stdin closed or "leave": hang up
	}()

	<-done
	listeners.summarise()
	room.Disconnect()
	o.emit("left", nil)
}

// handle runs one command and reports whether to keep reading.
func handle(room *lksdk.Room, o *out, c command) bool {
	reply := map[string]any{}
	if c.ID != nil {
		reply["id"] = *c.ID
	}
	switch c.Cmd {
	case "dtmf":
		code, known := rfc4733[c.Digit]
		if c.Code != nil {
			code, known = *c.Code, true
		}
		if !known {
			reply["message"] = fmt.Sprintf("unknown DTMF digit %q and no code given", c.Digit)
			o.emit("error", reply)
			return true
		}
		pkt := &livekit.SipDTMF{Code: code, Digit: c.Digit}
		reply["t0"] = monotonic() // just before the send: where a key → prompt latency starts
		if err := room.LocalParticipant.PublishDataPacket(pkt, lksdk.WithDataPublishReliable(true)); err != nil {
			reply["message"] = fmt.Sprintf("publish DTMF %q failed: %v", c.Digit, err)
			o.emit("error", reply)
			return true
		}
		reply["code"], reply["digit"] = code, c.Digit
		o.emit("dtmf_sent", reply)
	case "ping":
		o.emit("pong", reply)
	case "leave":
		return false
	default:
		reply["message"] = fmt.Sprintf("unknown command %q (known: dtmf, ping, leave)", c.Cmd)
		o.emit("error", reply)
	}
	return true
}

// subscribe asks the server for a remote track (the caller joins with auto-subscribe off).
func subscribe(o *out, pub *lksdk.RemoteTrackPublication) {
	if err := pub.SetSubscribed(true); err != nil {
		o.emit("error", map[string]any{"message": fmt.Sprintf("subscribing to %s failed: %v", pub.SID(), err)})
	}
}

// listener tells sound from silence on one subscribed audio track by RTP payload size.
type listener struct {
	o            *out
	participant  string
	track        string
	soundBytes   int
	quietPackets int
	gap          float64

	mu    sync.Mutex
	sizes map[int]int // payload bytes -> packets
}

// run reads the track's RTP packets until it ends; it never decodes them.
func (l *listener) run(track *webrtc.TrackRemote) {
	sounding := false
	quiet := 0
	var start, quietSince, last float64
	end := func(at float64) {
		sounding = false
		l.o.emit("sound_end", map[string]any{"participant": l.participant, "start": start, "end": at})
	}
	for {
		// While a sound plays, a read waits at most -gap: an encoder with DTX stops sending when
		// the sound stops, so the end is known then, not at the next packet (400 ms later).
		deadline := time.Time{}
		if sounding {
			deadline = time.Now().Add(time.Duration(l.gap * float64(time.Second)))
		}
		_ = track.SetReadDeadline(deadline)
		pkt, _, err := track.ReadRTP()
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			end(last + 0.02) // the track paused: the sound ended with its last packet's 20 ms
			continue
		}
		if err != nil {
			return
		}
		now := monotonic()
		size := len(pkt.Payload)
		l.mu.Lock()
		l.sizes[size]++
		l.mu.Unlock()
		last = now
		if size >= l.soundBytes {
			quiet = 0
			if !sounding {
				sounding, start = true, now
				l.o.emit("onset", map[string]any{"participant": l.participant, "bytes": size, "seq": pkt.SequenceNumber})
			}
		} else if sounding {
			quiet++
			if quiet == 1 {
				quietSince = now
			}
			if quiet >= l.quietPackets {
				end(quietSince)
			}
		}
	}
}

// listening is every listener of the call, summarised at leave.
type listening struct {
	mu  sync.Mutex
	all []*listener
}

func (ls *listening) add(l *listener) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.all = append(ls.all, l)
}

func (ls *listening) summarise() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, l := range ls.all {
		l.mu.Lock()
		sizes := map[string]int{}
		for size, n := range l.sizes {
			sizes[fmt.Sprint(size)] = n
		}
		l.mu.Unlock()
		l.o.emit("listen_summary", map[string]any{"participant": l.participant, "track": l.track,
			"sound_bytes": l.soundBytes, "payload_sizes": sizes})
	}
}
