package h2

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzServeConn feeds arbitrary frames (after a valid preface) to a server
// connection: whatever comes, the server must neither panic nor hang, and
// must end the connection once the client's side closes.
func FuzzServeConn(f *testing.F) {
	seed := func(frames func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer)) []byte {
		var out, hb bytes.Buffer
		fr := http2.NewFramer(&out, nil)
		enc := hpack.NewEncoder(&hb)
		frames(fr, enc, &hb)
		return out.Bytes()
	}
	hdrs := func(enc *hpack.Encoder, hb *bytes.Buffer, kv ...string) []byte {
		hb.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	}
	f.Add(seed(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		fr.WriteSettings()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true,
			BlockFragment: hdrs(enc, hb, ":method", "GET", ":scheme", "https", ":path", "/", ":authority", "x")})
	}))
	f.Add(seed(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
			BlockFragment: hdrs(enc, hb, ":method", "POST", ":scheme", "https", ":path", "/", "content-length", "4")})
		fr.WriteData(1, false, []byte("ab"))
		fr.WriteWindowUpdate(1, 10)
		fr.WriteData(1, true, []byte("cd"))
		fr.WriteRSTStream(1, http2.ErrCodeCancel)
		fr.WritePing(false, [8]byte{1})
		fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	}))
	f.Add(seed(func(fr *http2.Framer, enc *hpack.Encoder, hb *bytes.Buffer) {
		fr.WriteSettings()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: false,
			BlockFragment: hdrs(enc, hb, ":method", "GET", ":scheme", "https")})
		fr.WriteContinuation(3, true, hdrs(enc, hb, ":path", "/x", "trailer", "x-t"))
		fr.WritePriority(3, http2.PriorityParam{StreamDep: 3})
	}))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Server{IdleTimeout: time.Second, PrefaceTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
			w.Header().Set("Trailer", "X-T")
			io.WriteString(w, "ok")
			w.(http.Flusher).Flush()
			w.Header().Set("X-T", "1")
		})}
		cl, sv := net.Pipe()
		done := make(chan struct{})
		go func() {
			s.ServeConn(context.Background(), sv)
			close(done)
		}()
		go io.Copy(io.Discard, cl) // the client reads whatever comes
		cl.SetWriteDeadline(time.Now().Add(2 * time.Second))
		cl.Write([]byte(http2.ClientPreface))
		cl.Write(in)
		cl.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end after the client closed")
		}
	})
}
