package pace

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// paceMetrics are the handler's Prometheus collectors. They are made once
// and registered on every config's registry, so their counts carry over a
// config reload.
var paceMetrics = struct {
	responses prometheus.Counter
	bytes     prometheus.Counter
	inFlight  prometheus.Gauge
	waited    prometheus.Counter
	resets    prometheus.Counter
	late      prometheus.Counter
	lateWaits prometheus.Counter
}{
	responses: prometheus.NewCounter(prometheus.CounterOpts(metricOpts("responses_total", "Responses whose body was paced."))),
	bytes:     prometheus.NewCounter(prometheus.CounterOpts(metricOpts("bytes_total", "Body bytes sent in paced responses."))),
	inFlight:  prometheus.NewGauge(prometheus.GaugeOpts(metricOpts("streams_in_flight", "Paced response bodies being sent now."))),
	waited:    prometheus.NewCounter(prometheus.CounterOpts(metricOpts("wait_seconds_total", "Time paced responses spent waiting for their chunks' slots."))),
	resets:    prometheus.NewCounter(prometheus.CounterOpts(metricOpts("resets_total", "Paced responses cut on purpose by reset."))),
	late:      prometheus.NewCounter(prometheus.CounterOpts(metricOpts("late_seconds_total", "Time paced chunks left past their slots, from wake-ups more than 2 ms late: how far the machine ran behind. Streams do not make it up."))),
	lateWaits: prometheus.NewCounter(prometheus.CounterOpts(metricOpts("late_waits_total", "Waits for a chunk's slot that woke more than 2 ms late."))),
}

// metricOpts names a metric caddy_pace_<name>.
func metricOpts(name, help string) prometheus.Opts {
	return prometheus.Opts{Namespace: "caddy", Subsystem: "pace", Name: name, Help: help}
}

// registerMetrics registers the collectors on reg (the registry of the
// config being loaded), tolerating ones already there.
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{paceMetrics.responses, paceMetrics.bytes, paceMetrics.inFlight, paceMetrics.waited, paceMetrics.resets, paceMetrics.late, paceMetrics.lateWaits} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}
