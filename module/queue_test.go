package pace

import (
	"net/http"
	"testing"
	"time"
)

func TestARequestBehindATransferWaitsForTheQueue(t *testing.T) {
	// One client on a link of 50 ms and 200 KB/s down, 100 KB/s up. A
	// tiny request on a new connection takes two round trips on the idle
	// link. With a download running for 3 s, through the default queue it
	// waits behind what the download's window has queued on the way down;
	// with an upload running, behind what the upload queued on the way up.
	// PATCHed to `queue fair`, the link gives it a fair share at once, and
	// it takes its round trips again.
	lab := startLive(t, `ADDR {
		pace {
			rtt 50ms
			rate 200KB
			upload_rate 100KB
			name lab
		}
		reverse_proxy `+testUpstream(t)+`
	}`)
	const ip = "127.0.0.41"
	tiny := func() time.Duration {
		r := fetch(t, clientFrom(ip), newRequest(t, http.MethodGet, lab.site+"/bytes/100"))
		if r.err != nil || len(r.body) != 100 {
			t.Fatalf("the tiny request: %d bytes (%v)", len(r.body), r.err)
		}
		return r.total
	}
	idle := tiny()

	d := startDownload(clientFrom(ip), lab.site+"/bytes/20000000")
	time.Sleep(3 * time.Second)
	behindDownload := tiny()
	d.stop()
	<-d.done

	time.Sleep(time.Second) // the queue drains
	uploaded := make(chan time.Duration, 1)
	go func() { uploaded <- upload(t, clientFrom(ip), lab.site, 1_000_000) }()
	time.Sleep(3 * time.Second)
	behindUpload := tiny()

	lab.change("lab", `{"queue": "fair"}`)
	fairBesideUpload := tiny()
	<-uploaded

	t.Logf("a tiny request on a new connection: %v on the idle link, %v behind a download, %v behind an upload; %v beside the upload once the queue is fair",
		idle, behindDownload, behindUpload, fairBesideUpload)
	if idle > 2*50*time.Millisecond+slack {
		t.Errorf("on the idle link it took %v, want two round trips, 100 ms", idle)
	}
	for _, tc := range []struct {
		what string
		took time.Duration
	}{{"a download", behindDownload}, {"an upload", behindUpload}} {
		// Behind the download it waited about 720 ms in most runs and
		// 470-490 ms in a few (how full the queue is 3 s in depends on
		// when HyStart ended slow start); a fair queue gives it 110 ms.
		if tc.took < idle+250*time.Millisecond {
			t.Errorf("behind %s it took %v, hardly more than on the idle link (%v): it did not wait in the queue", tc.what, tc.took, idle)
		}
	}
	if fairBesideUpload > idle+slack || fairBesideUpload > behindUpload/2 {
		t.Errorf("with a fair queue it took %v beside the upload, want about %v", fairBesideUpload, idle)
	}
}
