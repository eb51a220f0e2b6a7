//! Random rotation of images stored one per row (the paper's cpl-mixVAE^a
//! augmentation on MNIST: rotations of up to ±20°), optionally with a random
//! shift and change of size.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The limits of the random transform each image gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TransformLimits {
    /// The largest rotation, in degrees.
    pub(crate) degrees: f32,
    /// The largest shift along each axis, in pixels.
    pub(crate) shift: f32,
    /// The largest relative change of size (0.1: a factor in `[0.9, 1.1]`).
    pub(crate) scale: f32,
}

/// One image's transform: a turn by `angle` radians and a change of size by
/// `factor` about the image centre, then a shift by `(dx, dy)` pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Transform {
    angle: f32,
    factor: f32,
    dx: f32,
    dy: f32,
}

impl Transform {
    /// No change.
    const IDENTITY: Transform = Transform {
        angle: 0.0,
        factor: 1.0,
        dx: 0.0,
        dy: 0.0,
    };

    /// A transform drawn uniformly within `limits`; a limit of 0 draws
    /// nothing from `rng` (so a rotation alone keeps its random stream).
    fn draw(limits: TransformLimits, rng: &mut ChaCha8Rng) -> Transform {
        let mut t = Transform::IDENTITY;
        if limits.degrees > 0.0 {
            t.angle = rng
                .random_range(-limits.degrees..=limits.degrees)
                .to_radians();
        }
        if limits.shift > 0.0 {
            t.dx = rng.random_range(-limits.shift..=limits.shift);
            t.dy = rng.random_range(-limits.shift..=limits.shift);
        }
        if limits.scale > 0.0 {
            t.factor = rng.random_range(1.0 - limits.scale..=1.0 + limits.scale);
        }
        t
    }
}

/// Transforms every row of `values` (row-major rows of `features` pixels,
/// each a `width`-wide image stored row by row, `features` a multiple of
/// `width`) by its own transform drawn uniformly within `limits` (angle in
/// `[−degrees, degrees]`, shift in `[−shift, shift]` along each axis, size
/// factor in `[1 − scale, 1 + scale]`), with bilinear interpolation; pixels
/// that come from outside the image are 0.
pub(crate) fn transform_rows_in_place(
    values: &mut [f32],
    features: usize,
    width: usize,
    limits: TransformLimits,
    rng: &mut ChaCha8Rng,
) {
    if width == 0 || features == 0 || !features.is_multiple_of(width) {
        return;
    }
    let mut source = Vec::with_capacity(features);
    for row in values.chunks_mut(features) {
        let transform = Transform::draw(limits, rng);
        source.clear();
        source.extend_from_slice(row);
        apply(&source, row, width, transform);
    }
}

/// `out` = the image `image` (`width` wide) under `t`; the turn is
/// counter-clockwise on screen, where y points down.
fn apply(image: &[f32], out: &mut [f32], width: usize, t: Transform) {
    let height = image.len() / width;
    let (cx, cy) = ((width as f32 - 1.0) / 2.0, (height as f32 - 1.0) / 2.0);
    let (sin, cos) = t.angle.sin_cos();
    let at = |x: isize, y: isize| -> f32 {
        if x < 0 || y < 0 || x >= width as isize || y >= height as isize {
            0.0
        } else {
            image[y as usize * width + x as usize]
        }
    };
    for y in 0..height {
        for x in 0..width {
            // The source of output pixel (x, y): undo the shift, the size
            // and the turn, in that order.
            let dx = (x as f32 - cx - t.dx) / t.factor;
            let dy = (y as f32 - cy - t.dy) / t.factor;
            let sx = cos * dx - sin * dy + cx;
            let sy = sin * dx + cos * dy + cy;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            out[y * width + x] = (1.0 - fy) * ((1.0 - fx) * at(x0, y0) + fx * at(x0 + 1, y0))
                + fy * ((1.0 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_quarter_turn_moves_a_pixel_around_the_centre_and_zero_keeps_the_image() {
        // 3x3 image with one lit pixel right of the centre.
        let image = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
        let mut out = [0.0; 9];
        let quarter = Transform {
            angle: std::f32::consts::FRAC_PI_2,
            ..Transform::IDENTITY
        };
        apply(&image, &mut out, 3, quarter);
        // y points down, so a counter-clockwise quarter turn on screen takes
        // (x 2, y 1) to (x 1, y 0).
        let lit: Vec<usize> = (0..9).filter(|&i| out[i] > 0.99).collect();
        assert_eq!(lit, [1]);
        assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let mut same = [0.0; 9];
        apply(&image, &mut same, 3, Transform::IDENTITY);
        assert_eq!(same, image);
    }

    #[test]
    fn rows_turn_by_their_own_angle_within_the_limit_and_keep_their_ink() {
        // Two 5x5 rows, each a blob at the centre plus a bar along x.
        let mut row = vec![0.0f32; 25];
        for x in 1..4 {
            row[2 * 5 + x] = 1.0;
        }
        let mut values = [row.clone(), row.clone()].concat();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let limits = TransformLimits {
            degrees: 20.0,
            shift: 0.0,
            scale: 0.0,
        };
        transform_rows_in_place(&mut values, 25, 5, limits, &mut rng);
        let (a, b) = values.split_at(25);
        assert_ne!(a, b, "each row draws its own angle");
        for rotated in [a, b] {
            // The centre pixel stays; a turn of at most 20° keeps the bar's
            // ink inside the image and near the middle row.
            assert!((rotated[12] - 1.0).abs() < 1e-5);
            assert!((rotated.iter().sum::<f32>() - 3.0).abs() < 0.3);
            assert!(rotated[..5].iter().chain(&rotated[20..]).all(|&v| v == 0.0));
        }
    }

    #[test]
    fn a_shift_moves_the_ink_by_whole_pixels_and_a_larger_size_spreads_it() {
        // 5x5 image with one lit pixel at the centre (2, 2).
        let mut image = [0.0f32; 25];
        image[12] = 1.0;
        let mut out = [0.0f32; 25];
        let shifted = Transform {
            dx: 1.0,
            dy: -2.0,
            ..Transform::IDENTITY
        };
        apply(&image, &mut out, 5, shifted);
        // Right by one, up by two: (3, 0).
        let lit: Vec<usize> = (0..25).filter(|&i| out[i] > 0.99).collect();
        assert_eq!(lit, [3]);
        assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);

        // A 3x3 block doubled in size about the centre covers the 5x5 image
        // (nearest samples 1, interpolated edges at least 0.5).
        let mut block = [0.0f32; 25];
        for y in 1..4 {
            for x in 1..4 {
                block[y * 5 + x] = 1.0;
            }
        }
        let doubled = Transform {
            factor: 2.0,
            ..Transform::IDENTITY
        };
        apply(&block, &mut out, 5, doubled);
        assert!(out.iter().all(|&v| v >= 0.5), "{out:?}");
        assert!(out.iter().sum::<f32>() > block.iter().sum::<f32>() + 5.0);
    }

    #[test]
    fn limits_bound_every_drawn_transform_and_zero_limits_draw_nothing() {
        let limits = TransformLimits {
            degrees: 10.0,
            shift: 2.0,
            scale: 0.1,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let drawn: Vec<Transform> = (0..200)
            .map(|_| Transform::draw(limits, &mut rng))
            .collect();
        for t in &drawn {
            assert!(t.angle.abs() <= 10f32.to_radians() + 1e-6);
            assert!(t.dx.abs() <= 2.0 && t.dy.abs() <= 2.0);
            assert!((0.9..=1.1).contains(&t.factor));
        }
        // The draws use the range: some shifts beyond 1.5 px, some sizes
        // beyond ±8%.
        assert!(drawn.iter().any(|t| t.dx.abs() > 1.5));
        assert!(drawn.iter().any(|t| (t.factor - 1.0).abs() > 0.08));

        // A rotation alone draws one number per image, as before shifts and
        // sizes existed, so rotation-only fits keep their results.
        let rotation_only = TransformLimits {
            degrees: 10.0,
            shift: 0.0,
            scale: 0.0,
        };
        let mut a = ChaCha8Rng::seed_from_u64(4);
        let mut b = ChaCha8Rng::seed_from_u64(4);
        let t = Transform::draw(rotation_only, &mut a);
        let angle: f32 = b.random_range(-10.0f32..=10.0);
        assert_eq!(t.angle, angle.to_radians());
        assert_eq!((t.dx, t.dy, t.factor), (0.0, 0.0, 1.0));
        assert_eq!(a.random::<u64>(), b.random::<u64>());
    }
}
