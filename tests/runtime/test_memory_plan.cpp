// The memory plan against what the runtime really holds: the parameter count against the
// model's own tensors, the activation estimate against the heap a forward and backward pass
// leaves allocated (glibc's mallinfo2), ZeRO-1's share of the optimizer state.
#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdio>

#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/parallel.hpp"
#include "nemokit/runtime/run/memory_plan.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;

namespace {

long double counted_parameters(NemotronH& model) {
  long double n = 0;
  for (Parameter* p : model.parameters()) n += (long double)p->value.numel();
  return n;
}

size_t heap_in_use() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;  // small blocks in the arenas and large ones mapped on their own
}

NemotronHConfig wider_config(const char* pattern) {
  NemotronHConfig c = tiny_config(pattern);
  c.hidden_size = 64, c.vocab_size = 512, c.mamba_head_dim = 16, c.chunk_size = 16, c.head_dim = 16;
  c.intermediate_size = 128, c.moe_intermediate_size = 64, c.moe_shared_expert_intermediate_size = 64;
  return c;
}

}  // namespace

TEST(runtime_memory_plan, ParameterCountIsTheModelsOwn) {
  for (const char* pattern : {"M*E-M", "MEME*", "-*-"}) {
    NemotronH model(tiny_config(pattern));
    EXPECT_EQ(model.config().parameter_count(), counted_parameters(model)) << pattern;
  }
  NemotronHConfig latent = tiny_config("ME*E");
  latent.moe_latent_size = 8;
  latent.num_nextn_predict_layers = 2;
  latent.mtp_pattern = "*E";
  latent.tie_word_embeddings = false;
  NemotronH model(latent);
  EXPECT_EQ(latent.parameter_count(), counted_parameters(model)) << "latent MoE, untied head, two MTP depths";
}

// Within 15% of the heap one micro-batch's forward and backward leave allocated, for a
// Mamba-heavy, an attention-heavy (long sequence) and an MoE-heavy stack.
TEST(runtime_memory_plan, ActivationEstimateMatchesTheHeap) {
  set_num_threads(1);
  struct Case {
    const char* pattern;
    int64_t batch, seq;
  } cases[] = {{"MM-MM", 4, 128}, {"*-*", 2, 256}, {"E-E", 4, 64}};
  for (const Case& c : cases) {
    NemotronH model(wider_config(c.pattern));
    model.init_weights(3);
    Batch b = random_batch(c.batch, c.seq, model.config().vocab_size, 7);
    model.zero_grad();
    const size_t before = heap_in_use();
    model.forward_backward(b, LossOptions{}, true);
    const long double measured = (long double)(heap_in_use() - before);
    MemoryLayout layout;
    layout.micro_batch_size = c.batch, layout.seq_length = c.seq;
    const long double estimate = plan_memory(model.config(), layout).activations;
    std::printf("%s, %lld x %lld tokens: estimate %s, heap %s (%.2Lf)\n", c.pattern, (long long)c.batch, (long long)c.seq,
                format_bytes(estimate).c_str(), format_bytes(measured).c_str(), estimate / measured);
    EXPECT_GT(estimate, 0.85L * measured) << c.pattern << ": estimate " << format_bytes(estimate) << ", heap " << format_bytes(measured);
    EXPECT_LT(estimate, 1.15L * measured) << c.pattern << ": estimate " << format_bytes(estimate) << ", heap " << format_bytes(measured);
  }
  set_num_threads(2);
}

TEST(runtime_memory_plan, ZeroOneShardsOnlyTheOptimizerState) {
  NemotronHConfig c = tiny_config();
  MemoryLayout whole, sharded;
  whole.data_parallel = sharded.data_parallel = 4;
  sharded.zero = 1;
  MemoryPlan a = plan_memory(c, whole), b = plan_memory(c, sharded);
  EXPECT_EQ(a.weights, 4 * c.parameter_count());
  EXPECT_EQ(a.optimizer, 8 * c.parameter_count());
  EXPECT_EQ(b.optimizer * 4, a.optimizer);
  EXPECT_EQ(b.weights, a.weights);
  EXPECT_EQ(b.gradients + b.gradient_sums, a.gradients + a.gradient_sums);
  EXPECT_NE(memory_plan_text(b, sharded).find("(ZeRO-1, 1/4)"), std::string::npos) << memory_plan_text(b, sharded);
  // Over expert parallel, ZeRO-1 shards the replicated parameters' moments; each rank's experts
  // keep theirs whole (a 1/ep share already).
  MemoryLayout ep_whole = whole, ep_sharded = sharded;
  ep_whole.expert_parallel = ep_sharded.expert_parallel = 2;
  const MemoryPlan e = plan_memory(c, ep_whole), f = plan_memory(c, ep_sharded);
  const long double rank_experts = routed_expert_parameters(c) / 2;
  ASSERT_GT(rank_experts, 0.0L);
  EXPECT_EQ(e.optimizer, 8 * e.rank_parameters);
  EXPECT_EQ(f.optimizer, 8 * (e.rank_parameters - rank_experts) / 4 + 8 * rank_experts);
  EXPECT_EQ(format_bytes(999), "999 B");
  EXPECT_EQ(format_bytes(1536), "1.54 KB");
  EXPECT_EQ(format_bytes(141e9L), "141 GB");
}
