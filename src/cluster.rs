//! Running a session's experiments on a compute cluster: [`slurm`] writes
//! the `sbatch` array script that splits a session into shards.

pub mod slurm;
