package merge

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"orchmind/adapters"
)

// Input is one adapter to merge with its weight.
type Input struct {
	Adapter *adapters.Adapter
	Weight  float64
	// ID names the adapter in errors and in the result's parents (its CID
	// or folder).
	ID string
}

// Report describes a merge.
type Report struct {
	Rank int
	// Energy is, per projection, the kept share of Σσ² (1 for Cat and for
	// SVD at full rank); MinEnergy is the smallest over projections.
	Energy    map[adapters.Key]float64
	MinEnergy float64
}

// check refuses adapters of different bases and shapes.
func check(in []Input) error {
	if len(in) == 0 {
		return errors.New("merge: no adapters given")
	}
	first := in[0]
	for _, x := range in {
		if x.Adapter == nil {
			return fmt.Errorf("merge: %s: no adapter", x.ID)
		}
		if err := x.Adapter.Validate(); err != nil {
			return fmt.Errorf("merge: %s: %w", x.ID, err)
		}
		if math.IsNaN(x.Weight) || math.IsInf(x.Weight, 0) {
			return fmt.Errorf("merge: %s: weight %v is not a number", x.ID, x.Weight)
		}
		a, b := first.Adapter.BaseFingerprint, x.Adapter.BaseFingerprint
		if a != "" && b != "" && a != b {
			return fmt.Errorf("merge: %s was trained on base %s but %s on base %s: only adapters of the same base model can be merged",
				first.ID, a, x.ID, b)
		}
		for k, p := range x.Adapter.Pairs {
			for _, y := range in {
				if q, ok := y.Adapter.Pairs[k]; ok && (q.In != p.In || q.Out != p.Out) {
					return fmt.Errorf("merge: layer %d %s is %d→%d in %s but %d→%d in %s: the adapters are for different models",
						k.Layer, k.Module, p.In, p.Out, x.ID, q.In, q.Out, y.ID)
				}
			}
		}
	}
	return nil
}

// keys is the union of the inputs' pair keys, sorted.
func keys(in []Input) []adapters.Key {
	set := map[adapters.Key]bool{}
	for _, x := range in {
		for k := range x.Adapter.Pairs {
			set[k] = true
		}
	}
	ks := make([]adapters.Key, 0, len(set))
	for k := range set {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b adapters.Key) int {
		if a.Layer != b.Layer {
			return a.Layer - b.Layer
		}
		if a.Module < b.Module {
			return -1
		}
		if a.Module > b.Module {
			return 1
		}
		return 0
	})
	return ks
}

// modules is the union of target modules, in first-seen order.
func modules(in []Input) []adapters.Module {
	var ms []adapters.Module
	for _, x := range in {
		for _, m := range x.Adapter.TargetModules {
			if !slices.Contains(ms, m) {
				ms = append(ms, m)
			}
		}
	}
	return ms
}

// stacked returns, for key k, the factors of Σ wᵢsᵢBᵢAᵢ side by side:
// A [k, in] and B [out, k] (row-major), with the scales folded into B.
func stacked(in []Input, k adapters.Key) (A, B []float64, r, nIn, nOut int) {
	for _, x := range in {
		if p, ok := x.Adapter.Pairs[k]; ok {
			r += x.Adapter.Rank
			nIn, nOut = p.In, p.Out
		}
	}
	A = make([]float64, r*nIn)
	B = make([]float64, nOut*r)
	off := 0
	for _, x := range in {
		p, ok := x.Adapter.Pairs[k]
		if !ok {
			continue
		}
		ri := x.Adapter.Rank
		s := x.Weight * float64(x.Adapter.Alpha) / float64(ri)
		for j := range ri {
			for i := range nIn {
				A[(off+j)*nIn+i] = float64(p.A[j*nIn+i])
			}
			for o := range nOut {
				B[o*r+off+j] = s * float64(p.B[o*ri+j])
			}
		}
		off += ri
	}
	return A, B, r, nIn, nOut
}

// Cat merges exactly by stacking the factors; the result's rank is the sum
// of the ranks and its scale is 1.
func Cat(in []Input) (*adapters.Adapter, Report, error) {
	if err := check(in); err != nil {
		return nil, Report{}, err
	}
	rank := 0
	for _, x := range in {
		rank += x.Adapter.Rank
	}
	out := newResult(in, rank)
	rep := Report{Rank: rank, Energy: map[adapters.Key]float64{}, MinEnergy: 1}
	for _, k := range keys(in) {
		A, B, r, nIn, nOut := stacked(in, k)
		p := &adapters.Pair{In: nIn, Out: nOut, A: make([]float32, rank*nIn), B: make([]float32, nOut*rank)}
		// Projections that only some adapters touch have fewer stacked rows:
		// the remaining rows of A and columns of B stay zero.
		for j := range r {
			for i := range nIn {
				p.A[j*nIn+i] = float32(A[j*nIn+i])
			}
			for o := range nOut {
				p.B[o*rank+j] = float32(B[o*r+j])
			}
		}
		out.Pairs[k] = p
		rep.Energy[k] = 1
	}
	return out, rep, nil
}

func newResult(in []Input, rank int) *adapters.Adapter {
	return &adapters.Adapter{Rank: rank, Alpha: float32(rank), TargetModules: modules(in),
		BaseFingerprint: in[0].Adapter.BaseFingerprint, BaseName: in[0].Adapter.BaseName, Pairs: map[adapters.Key]*adapters.Pair{}}
}

// SVD merges to rank R: per projection, the best rank-R approximation (in
// Frobenius norm) of Σ wᵢsᵢBᵢAᵢ, split as B = U·√Σ, A = √Σ·Vᵀ, scale 1.
func SVD(in []Input, rank int) (*adapters.Adapter, Report, error) {
	if err := check(in); err != nil {
		return nil, Report{}, err
	}
	if rank <= 0 {
		return nil, Report{}, fmt.Errorf("merge: rank must be > 0 (got %d)", rank)
	}
	out := newResult(in, rank)
	rep := Report{Rank: rank, Energy: map[adapters.Key]float64{}, MinEnergy: 1}
	for _, k := range keys(in) {
		A, B, r, nIn, nOut := stacked(in, k)
		// B = Qb·Rb (out×r, r×r), Aᵀ = Qa·Ra (in×r, r×r) ⇒ ΔW = B·A =
		// Qb·(Rb·Raᵀ)·Qaᵀ; the SVD of the small r×r core gives ΔW's.
		qb, rb := qr(B, nOut, r)
		qa, ra := qr(transpose(A, r, nIn), nIn, r)
		core := mul(rb, transpose(ra, r, r), r, r, r)
		u, sig, v := svd(core, r)
		var total, kept float64
		for i, s := range sig {
			total += s * s
			if i < rank {
				kept += s * s
			}
		}
		energy := 1.0
		if total > 0 {
			energy = kept / total
		}
		rep.Energy[k] = energy
		rep.MinEnergy = min(rep.MinEnergy, energy)
		U := mul(qb, u, nOut, r, r) // out×r
		V := mul(qa, v, nIn, r, r)  // in×r
		p := &adapters.Pair{In: nIn, Out: nOut, A: make([]float32, rank*nIn), B: make([]float32, nOut*rank)}
		for j := 0; j < rank && j < r; j++ {
			sq := math.Sqrt(sig[j])
			for o := range nOut {
				p.B[o*rank+j] = float32(U[o*r+j] * sq)
			}
			for i := range nIn {
				p.A[j*nIn+i] = float32(V[i*r+j] * sq)
			}
		}
		out.Pairs[k] = p
	}
	return out, rep, nil
}

func transpose(a []float64, rows, cols int) []float64 {
	t := make([]float64, len(a))
	for i := range rows {
		for j := range cols {
			t[j*rows+i] = a[i*cols+j]
		}
	}
	return t
}

// mul returns a [n×m] · b [m×p].
func mul(a, b []float64, n, m, p int) []float64 {
	c := make([]float64, n*p)
	for i := range n {
		for k := range m {
			if v := a[i*m+k]; v != 0 {
				for j := range p {
					c[i*p+j] += v * b[k*p+j]
				}
			}
		}
	}
	return c
}

// qr factors a [n×k] (n ≥ k in practice) as Q [n×k] with orthonormal columns
// and upper-triangular R [k×k], by modified Gram-Schmidt with one
// re-orthogonalisation pass. Columns that are (numerically) dependent get a
// zero R diagonal and a zero Q column.
func qr(a []float64, n, k int) (q, r []float64) {
	q = append([]float64(nil), a...)
	r = make([]float64, k*k)
	for j := range k {
		for pass := 0; pass < 2; pass++ {
			for i := 0; i < j; i++ {
				var d float64
				for x := range n {
					d += q[x*k+i] * q[x*k+j]
				}
				r[i*k+j] += d
				for x := range n {
					q[x*k+j] -= d * q[x*k+i]
				}
			}
		}
		var nrm float64
		for x := range n {
			nrm += q[x*k+j] * q[x*k+j]
		}
		nrm = math.Sqrt(nrm)
		r[j*k+j] = nrm
		for x := range n {
			if nrm > 1e-300 {
				q[x*k+j] /= nrm
			} else {
				q[x*k+j] = 0
			}
		}
	}
	return q, r
}

// svd computes a = U·diag(σ)·Vᵀ of a square r×r matrix by one-sided Jacobi
// rotations, σ sorted in decreasing order.
func svd(a []float64, r int) (u []float64, sig []float64, v []float64) {
	u = append([]float64(nil), a...)
	v = make([]float64, r*r)
	for i := range r {
		v[i*r+i] = 1
	}
	for sweep := 0; sweep < 60; sweep++ {
		off := 0.0
		for p := 0; p < r; p++ {
			for q := p + 1; q < r; q++ {
				var alpha, beta, gamma float64
				for i := range r {
					x, y := u[i*r+p], u[i*r+q]
					alpha += x * x
					beta += y * y
					gamma += x * y
				}
				if gamma == 0 || math.Abs(gamma) <= 1e-15*math.Sqrt(alpha*beta) {
					continue
				}
				off = max(off, math.Abs(gamma)/math.Sqrt(alpha*beta))
				zeta := (beta - alpha) / (2 * gamma)
				t := math.Copysign(1, zeta) / (math.Abs(zeta) + math.Sqrt(1+zeta*zeta))
				c := 1 / math.Sqrt(1+t*t)
				s := c * t
				for i := range r {
					x, y := u[i*r+p], u[i*r+q]
					u[i*r+p], u[i*r+q] = c*x-s*y, s*x+c*y
					x, y = v[i*r+p], v[i*r+q]
					v[i*r+p], v[i*r+q] = c*x-s*y, s*x+c*y
				}
			}
		}
		if off < 1e-14 {
			break
		}
	}
	sig = make([]float64, r)
	for j := range r {
		var n float64
		for i := range r {
			n += u[i*r+j] * u[i*r+j]
		}
		sig[j] = math.Sqrt(n)
		for i := range r {
			if sig[j] > 1e-300 {
				u[i*r+j] /= sig[j]
			}
		}
	}
	// Sort by decreasing σ.
	idx := make([]int, r)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case sig[a] > sig[b]:
			return -1
		case sig[a] < sig[b]:
			return 1
		}
		return 0
	})
	u2, v2, s2 := make([]float64, r*r), make([]float64, r*r), make([]float64, r)
	for nj, j := range idx {
		s2[nj] = sig[j]
		for i := range r {
			u2[i*r+nj] = u[i*r+j]
			v2[i*r+nj] = v[i*r+j]
		}
	}
	return u2, s2, v2
}
