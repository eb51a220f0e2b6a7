//! Random rotation of images stored one per row (the paper's cpl-mixVAE^a
//! augmentation on MNIST: rotations of up to ±20°).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Rotates every row of `values` (row-major rows of `features` pixels, each
/// a `width`-wide image stored row by row, `features` a multiple of `width`)
/// by its own angle drawn uniformly from `[−degrees, degrees]`, about the
/// image centre, with bilinear interpolation; pixels that come from outside
/// the image are 0.
pub(crate) fn rotate_rows_in_place(
    values: &mut [f32],
    features: usize,
    width: usize,
    degrees: f32,
    rng: &mut ChaCha8Rng,
) {
    if width == 0 || features == 0 || !features.is_multiple_of(width) {
        return;
    }
    let mut source = Vec::with_capacity(features);
    for row in values.chunks_mut(features) {
        let angle = if degrees > 0.0 {
            rng.random_range(-degrees..=degrees).to_radians()
        } else {
            0.0
        };
        source.clear();
        source.extend_from_slice(row);
        rotate(&source, row, width, angle);
    }
}

/// `out` = the image `image` (`width` wide) rotated by `angle` radians
/// (counter-clockwise on screen, where y points down).
fn rotate(image: &[f32], out: &mut [f32], width: usize, angle: f32) {
    let height = image.len() / width;
    let (cx, cy) = ((width as f32 - 1.0) / 2.0, (height as f32 - 1.0) / 2.0);
    let (sin, cos) = angle.sin_cos();
    let at = |x: isize, y: isize| -> f32 {
        if x < 0 || y < 0 || x >= width as isize || y >= height as isize {
            0.0
        } else {
            image[y as usize * width + x as usize]
        }
    };
    for y in 0..height {
        for x in 0..width {
            // The source of output pixel (x, y): rotate it back by −angle.
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
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
        rotate(&image, &mut out, 3, std::f32::consts::FRAC_PI_2);
        // y points down, so a counter-clockwise quarter turn on screen takes
        // (x 2, y 1) to (x 1, y 0).
        let lit: Vec<usize> = (0..9).filter(|&i| out[i] > 0.99).collect();
        assert_eq!(lit, [1]);
        assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let mut same = [0.0; 9];
        rotate(&image, &mut same, 3, 0.0);
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
        rotate_rows_in_place(&mut values, 25, 5, 20.0, &mut rng);
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
}
