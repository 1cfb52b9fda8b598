;; The CPU backend's matrix product in the browser (src/bin/walf-worker/product.rs): a small
;; module of its own over the engine's memory, so that it can use relaxed SIMD's fused
;; multiply-add where the browser has it while the engine's module stays plain SIMD128.
;; build.rs turns it into two modules: `MADD a b c` (a·b + c, four lanes) becomes
;; f32x4.relaxed_madd in one and f32x4.mul then f32x4.add in the other.
;;
;; product(m, k, panels, a, lda, b, c, ldc): C = A · B, where A is m × k (rows lda floats
;; apart), B is k × 8·panels packed by panels of 8 columns (panel p holds k rows of its 8
;; columns, one after another) and C is m × 8·panels (rows ldc floats apart). Addresses are byte
;; offsets into the engine's memory; lda, ldc in floats. C is overwritten. Each element is summed
;; over k in order, four rows and eight columns at a time.
(module
  (import "env" "memory" (memory 0))
  (func (export "product")
    (param $m i32) (param $k i32) (param $panels i32)
    (param $a i32) (param $lda i32) (param $b i32) (param $c i32) (param $ldc i32)
    (local $p i32) (local $i i32) (local $left i32)
    (local $panel i32) (local $bp i32) (local $out i32)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32)
    (local $x v128) (local $b0 v128) (local $b1 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    ;; Strides in bytes from here on.
    (local.set $lda (i32.shl (local.get $lda) (i32.const 2)))
    (local.set $ldc (i32.shl (local.get $ldc) (i32.const 2)))
    (local.set $p (i32.const 0))
    (block $panels_done
      (loop $each_panel
        (br_if $panels_done (i32.ge_u (local.get $p) (local.get $panels)))
        (local.set $panel (i32.add (local.get $b)
          (i32.mul (local.get $p) (i32.shl (local.get $k) (i32.const 5)))))
        (local.set $i (i32.const 0))
        ;; Four rows at a time.
        (block $quads_done
          (loop $each_quad
            (br_if $quads_done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $m)))
            (local.set $a0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $lda))))
            (local.set $a1 (i32.add (local.get $a0) (local.get $lda)))
            (local.set $a2 (i32.add (local.get $a1) (local.get $lda)))
            (local.set $a3 (i32.add (local.get $a2) (local.get $lda)))
            (local.set $c00 (v128.const i32x4 0 0 0 0))
            (local.set $c01 (v128.const i32x4 0 0 0 0))
            (local.set $c10 (v128.const i32x4 0 0 0 0))
            (local.set $c11 (v128.const i32x4 0 0 0 0))
            (local.set $c20 (v128.const i32x4 0 0 0 0))
            (local.set $c21 (v128.const i32x4 0 0 0 0))
            (local.set $c30 (v128.const i32x4 0 0 0 0))
            (local.set $c31 (v128.const i32x4 0 0 0 0))
            (local.set $bp (local.get $panel))
            (local.set $left (local.get $k))
            (block $quad_k_done
              (loop $quad_k
                (br_if $quad_k_done (i32.eqz (local.get $left)))
                (local.set $b0 (v128.load (local.get $bp)))
                (local.set $b1 (v128.load offset=16 (local.get $bp)))
                (local.set $x (v128.load32_splat (local.get $a0)))
                (local.set $c00 (MADD $x $b0 $c00))
                (local.set $c01 (MADD $x $b1 $c01))
                (local.set $x (v128.load32_splat (local.get $a1)))
                (local.set $c10 (MADD $x $b0 $c10))
                (local.set $c11 (MADD $x $b1 $c11))
                (local.set $x (v128.load32_splat (local.get $a2)))
                (local.set $c20 (MADD $x $b0 $c20))
                (local.set $c21 (MADD $x $b1 $c21))
                (local.set $x (v128.load32_splat (local.get $a3)))
                (local.set $c30 (MADD $x $b0 $c30))
                (local.set $c31 (MADD $x $b1 $c31))
                (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
                (local.set $a1 (i32.add (local.get $a1) (i32.const 4)))
                (local.set $a2 (i32.add (local.get $a2) (i32.const 4)))
                (local.set $a3 (i32.add (local.get $a3) (i32.const 4)))
                (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
                (local.set $left (i32.sub (local.get $left) (i32.const 1)))
                (br $quad_k)))
            (local.set $out (i32.add
              (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc)))
              (i32.shl (local.get $p) (i32.const 5))))
            (v128.store (local.get $out) (local.get $c00))
            (v128.store offset=16 (local.get $out) (local.get $c01))
            (local.set $out (i32.add (local.get $out) (local.get $ldc)))
            (v128.store (local.get $out) (local.get $c10))
            (v128.store offset=16 (local.get $out) (local.get $c11))
            (local.set $out (i32.add (local.get $out) (local.get $ldc)))
            (v128.store (local.get $out) (local.get $c20))
            (v128.store offset=16 (local.get $out) (local.get $c21))
            (local.set $out (i32.add (local.get $out) (local.get $ldc)))
            (v128.store (local.get $out) (local.get $c30))
            (v128.store offset=16 (local.get $out) (local.get $c31))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $each_quad)))
        ;; The last rows one at a time.
        (block $rows_done
          (loop $each_row
            (br_if $rows_done (i32.ge_u (local.get $i) (local.get $m)))
            (local.set $a0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $lda))))
            (local.set $c00 (v128.const i32x4 0 0 0 0))
            (local.set $c01 (v128.const i32x4 0 0 0 0))
            (local.set $bp (local.get $panel))
            (local.set $left (local.get $k))
            (block $row_k_done
              (loop $row_k
                (br_if $row_k_done (i32.eqz (local.get $left)))
                (local.set $x (v128.load32_splat (local.get $a0)))
                (local.set $c00 (MADD $x (v128.load (local.get $bp)) $c00))
                (local.set $c01 (MADD $x (v128.load offset=16 (local.get $bp)) $c01))
                (local.set $a0 (i32.add (local.get $a0) (i32.const 4)))
                (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
                (local.set $left (i32.sub (local.get $left) (i32.const 1)))
                (br $row_k)))
            (local.set $out (i32.add
              (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc)))
              (i32.shl (local.get $p) (i32.const 5))))
            (v128.store (local.get $out) (local.get $c00))
            (v128.store offset=16 (local.get $out) (local.get $c01))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $each_row)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $each_panel)))))
