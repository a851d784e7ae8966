package tensor

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"orchmind/engine/quant"
)

// Matrix is a rows×cols weight matrix stored row-major in a ggml type: each
// row is cols values encoded as whole blocks of Type. A linear layer
// y = W·x with W of shape [out, in] is a Matrix with Rows=out, Cols=in, the
// layout of GGUF, safetensors and PyTorch alike.
type Matrix struct {
	Type       quant.Type
	Rows, Cols int
	Data       []byte

	i8 int8Cache // the integer path's scale table, made at first use
}

// NewMatrix wraps data as a rows×cols matrix of type t, checking its size.
func NewMatrix(t quant.Type, rows, cols int, data []byte) (*Matrix, error) {
	rb, err := quant.RowBytes(t, cols)
	if err != nil {
		return nil, err
	}
	if rows < 0 || len(data) != rows*rb {
		return nil, fmt.Errorf("%s matrix %d×%d needs %d bytes, got %d", t, rows, cols, rows*rb, len(data))
	}
	return &Matrix{Type: t, Rows: rows, Cols: cols, Data: data}, nil
}

// View wraps the first rows×cols values of v (row-major) as an F32 matrix
// without copying (on little-endian machines, all the ones Go targets but
// s390x and big-endian MIPS/PPC): later writes to v show through. It lets activations
// (attention keys, probabilities) be multiplied with the matrix kernels.
func View(rows, cols int, v []float32) *Matrix {
	v = v[:rows*cols]
	var b []byte
	switch {
	case len(v) == 0:
	case binary.NativeEndian.Uint16([]byte{1, 0}) != 1:
		// F32 rows are little-endian bytes: a big-endian machine copies.
		b, _ = quant.Quantize(quant.F32, v, nil)
	default:
		b = unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
	}
	return &Matrix{Type: quant.F32, Rows: rows, Cols: cols, Data: b}
}

// Quantized returns m's float32 values (rows×cols) encoded as type t.
func Quantized(t quant.Type, rows, cols int, values []float32) (*Matrix, error) {
	if len(values) != rows*cols {
		return nil, fmt.Errorf("have %d values for a %d×%d matrix", len(values), rows, cols)
	}
	data, err := quant.Quantize(t, values, nil)
	if err != nil {
		return nil, err
	}
	return NewMatrix(t, rows, cols, data)
}

// RowBytes is the number of bytes of one stored row.
func (m *Matrix) RowBytes() int {
	n, _ := quant.RowBytes(m.Type, m.Cols)
	return n
}

// Row returns the stored bytes of row i.
func (m *Matrix) Row(i int) []byte {
	rb := m.RowBytes()
	return m.Data[i*rb : (i+1)*rb]
}

// RowRange returns rows [r0, r1) of m as a matrix that shares m's storage (no
// copy, no conversion): a cheap view for products over part of a large
// matrix, such as a slice of the vocabulary of an output layer. It panics
// when the range is not inside m, like slicing does.
func (m *Matrix) RowRange(r0, r1 int) *Matrix {
	if r0 < 0 || r1 < r0 || r1 > m.Rows {
		panic(fmt.Sprintf("tensor: rows [%d, %d) of a %d-row matrix", r0, r1, m.Rows))
	}
	rb := m.RowBytes()
	return &Matrix{Type: m.Type, Rows: r1 - r0, Cols: m.Cols, Data: m.Data[r0*rb : r1*rb : r1*rb]}
}

// DequantizeRow writes row i as float32 into dst[:Cols].
func (m *Matrix) DequantizeRow(i int, dst []float32) {
	if err := quant.Dequantize(m.Type, m.Row(i), dst[:m.Cols]); err != nil {
		panic(err) // sizes were checked by NewMatrix
	}
}

// Float32 returns all values dequantized, row-major.
func (m *Matrix) Float32() []float32 {
	out := make([]float32, m.Rows*m.Cols)
	for i := 0; i < m.Rows; i++ {
		m.DequantizeRow(i, out[i*m.Cols:])
	}
	return out
}

// asFloat32 views a stored F32 row as []float32 when it is 4-byte aligned
// (always for matrices built in memory; a mapped file might not be). Its
// callers run only on little-endian machines (the SIMD and tile kernels'),
// where the stored bytes are the values.
func asFloat32(row []byte) ([]float32, bool) {
	if len(row) < 4 || uintptr(unsafe.Pointer(&row[0]))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&row[0])), len(row)/4), true
}
