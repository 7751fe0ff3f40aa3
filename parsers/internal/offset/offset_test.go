package offset

import "testing"

func TestIn(t *testing.T) {
	orig := []byte("hello world")
	other := []byte("hello world")
	tests := []struct {
		name string
		sub  []byte
		want int
	}{
		{"start", orig[:5], 0},
		{"middle", orig[6:], 6},
		{"other array", other[2:], -1},
		{"nil", nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := In(orig, tt.sub); got != tt.want {
				t.Errorf("In = %d, want %d", got, tt.want)
			}
		})
	}
}
