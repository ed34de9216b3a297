package sse

// HoldWrite stands for a write in progress on s until release is called.
func HoldWrite(s *Stream) (release func()) {
	s.writing <- struct{}{}
	return func() { <-s.writing }
}
