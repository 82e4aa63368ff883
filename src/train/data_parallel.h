// The data-parallel forms of Trainer and evaluate (mlpx/training.h), for run_training and the
// tests: they take the job's ranks, which the public API does not show. Internal.
#pragma once

#include <cstdint>

#include "dist/communicator.h"
#include "mlpx/training.h"

namespace mlpx {

// A Trainer whose every epoch runs over `ranks` (nullptr, or one rank: as Trainer's public
// constructor). With N > 1 ranks (which must outlive the trainer), every rank holds the same data
// and the same initial model, and every epoch takes the same global shuffle. Rank r runs rows
// [floor(b r / N), floor(b (r + 1) / N)) of every batch of b rows (the last, short batch
// included; a rank with no rows contributes a zero gradient); the gradients are summed over the
// ranks (each already divided by b) before the optimizer step, so every rank applies the same
// update. The loss and accuracy are reduced once per epoch. Needs batch_size >= N. On a CUDA
// device, train.collectives decides how the gradients travel (dist::GradientSync): NCCL on the
// device's stream (the step stays one CUDA graph), or MPI through host copies (the step then
// runs without a CUDA graph).
Trainer data_parallel_trainer(TrainerOptions options, Sequential& model, Dataset train,
                              dist::Communicator* ranks);

// evaluate() over `ranks` (every rank holding the same model and data): each rank scores its
// 1/N of the rows and the sums are reduced, so every rank gets the whole set's figures.
Evaluation evaluate(const Sequential& model, Loss loss, const Dataset& data, int64_t batch,
                    dist::Communicator& ranks);

}  // namespace mlpx
