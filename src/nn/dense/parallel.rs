//! Training several nets at once: on the rayon pool in a build without
//! CUDA, one after another in a `cuda` build, whose nets hold a CUDA stream
//! and are not `Send` (see [`super::engine::Movable`]). The results are the
//! same either way: the nets and the work beside them are independent.

/// `f` on every item of `items` with its index, on the rayon pool; the
/// results in the items' order, or the first error.
#[cfg(not(feature = "cuda"))]
pub fn for_each_net<T, R, E>(
    items: &mut [T],
    f: impl Fn(usize, &mut T) -> Result<R, E> + Sync + Send,
) -> Result<Vec<R>, E>
where
    T: Send,
    R: Send,
    E: Send,
{
    use rayon::prelude::*;
    items
        .par_iter_mut()
        .enumerate()
        .map(|(i, item)| f(i, item))
        .collect()
}

/// `f` on every item of `items` with its index, one after another; the
/// results in the items' order, or the first error.
#[cfg(feature = "cuda")]
pub fn for_each_net<T, R, E>(
    items: &mut [T],
    f: impl Fn(usize, &mut T) -> Result<R, E>,
) -> Result<Vec<R>, E> {
    items
        .iter_mut()
        .enumerate()
        .map(|(i, item)| f(i, item))
        .collect()
}

/// `a` and `b` side by side on the rayon pool.
#[cfg(not(feature = "cuda"))]
pub fn alongside<RA: Send, RB: Send>(
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    rayon::join(a, b)
}

/// `a`, then `b`.
#[cfg(feature = "cuda")]
pub fn alongside<RA, RB>(a: impl FnOnce() -> RA, b: impl FnOnce() -> RB) -> (RA, RB) {
    (a(), b())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_visited_once_and_results_keep_their_order() {
        let mut items = vec![1, 2, 3, 4, 5];
        let doubled: Result<Vec<i32>, ()> = for_each_net(&mut items, |i, item| {
            *item += 10;
            Ok(*item * 2 + i as i32)
        });
        assert_eq!(doubled, Ok(vec![22, 25, 28, 31, 34]));
        assert_eq!(items, vec![11, 12, 13, 14, 15]);
    }

    #[test]
    fn an_error_is_returned() {
        let mut items = vec![1, 2, 3];
        let result: Result<Vec<i32>, String> = for_each_net(&mut items, |_, item| {
            if *item == 2 {
                Err(format!("item {item}"))
            } else {
                Ok(*item)
            }
        });
        assert_eq!(result, Err("item 2".to_string()));
        assert_eq!(alongside(|| 1, || "b"), (1, "b"));
    }
}
