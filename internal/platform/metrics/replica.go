package metrics

import "github.com/prometheus/client_golang/prometheus"

// WatchReadReplica adds the read replica's metrics: strata_read_fallbacks_total, counted by
// ReadFallback, and strata_read_replica_up, read from up at each scrape. reasons are the
// fallback reasons that show, at 0, from the start.
func (m *Metrics) WatchReadReplica(up func() bool, reasons ...string) {
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_read_fallbacks_total",
		Help: "Reads meant for the read replica that the primary answered, by reason: unavailable (the replica failed), down (it failed recently and is left alone), behind (it had not replayed what the read needed in time), error (it refused the statement).",
	}, []string{"reason"})
	for _, r := range reasons {
		m.fallbacks.WithLabelValues(r)
	}
	m.reg.MustRegister(m.fallbacks, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_read_replica_up",
		Help: "1 while reads go to the read replica, 0 while it is left alone after a failure.",
	}, func() float64 {
		if up() {
			return 1
		}
		return 0
	}))
}

// ReadFallback records a read meant for the read replica that went to the primary, and why.
func (m *Metrics) ReadFallback(reason string) {
	if m == nil || m.fallbacks == nil {
		return
	}
	m.fallbacks.WithLabelValues(reason).Inc()
}
