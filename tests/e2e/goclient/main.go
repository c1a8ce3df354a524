// Command ivrkit-goclient is the Go test caller of ivrkit's end-to-end suite.
//
// It joins a LiveKit room with server-sdk-go, sends DTMF the way a Go
// application does (PublishDataPacket(&livekit.SipDTMF{...})), and reports
// every SipDTMF packet it receives. It speaks the same JSON-lines protocol as
// tests/stack/caller.py, so one Python wrapper drives both:
//
//	stdin : {"cmd":"dtmf","digit":"1","code":1,"id":7}  {"cmd":"leave"}
//	stdout: {"event":"connected",...} {"event":"dtmf",...} {"event":"dtmf_sent",...}
//	        {"event":"participant_joined",...} {"event":"track_published",...} {"event":"left"}
//
// At connect it publishes a silent microphone track (-mic=false: none), as a phone does.
// The URL comes from -url, the access token from the LIVEKIT_TOKEN
// environment variable (kept off the process list).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"

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
	flag.Parse()
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
	cb.OnTrackPublished = func(pub *lksdk.RemoteTrackPublication, p *lksdk.RemoteParticipant) {
		o.emit("track_published", map[string]any{"participant": p.Identity(), "track": pub.SID(), "kind": string(pub.Kind())})
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
