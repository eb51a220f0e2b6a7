//! Running a session's experiments on a compute cluster: [`shard`] splits
//! the unfinished experiments among workers and folds their result files
//! back into the session, [`slurm`] writes the `sbatch` array script (one
//! task per shard), and [`submit`] plans, writes and submits the job.

pub mod shard;
pub mod slurm;
pub mod submit;
