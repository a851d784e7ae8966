// Package merge combines LoRA adapters of one base model with the right
// math. A LoRA pair's update is ΔW = s·B·A (s = alpha/r), which is bilinear
// in A and B: averaging the A's and the B's separately does not average the
// updates (mean(B)·mean(A) ≠ mean(B·A)). Here the merged update is exactly
// Σ wᵢ·sᵢ·Bᵢ·Aᵢ:
//
//   - Cat stacks the factors, A = [A₁; A₂; …], B = [w₁s₁B₁, w₂s₂B₂, …] with
//     alpha = rank (scale 1): exact, rank r₁+r₂+….
//   - SVD forms the same sum and truncates it to rank R by its singular
//     value decomposition, computed through QR factorisations of the
//     stacked factors (never an out×in matrix), and reports the share of
//     the update's energy (squared Frobenius norm) that was kept.
package merge
