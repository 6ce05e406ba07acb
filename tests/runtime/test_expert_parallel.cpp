// Expert parallel without a second process: the model a rank builds when its experts are split
// (a communicator that says "rank 1 of 2" and refuses to exchange anything), its layout, its
// weights against one rank's, and every layout that cannot work refused naming its key. The
// exchange itself runs with two real ranks in tests/pretrain/expert_parallel_test.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

#include "nemokit/runtime/comm.hpp"
#include "nemokit/runtime/model.hpp"
#include "nemokit/runtime/run/memory_plan.hpp"
#include "nemokit/runtime/run/parallel_options.hpp"
#include "tiny_model.hpp"

using namespace nemokit::rt;
using namespace nemokit::rt::testing;

namespace {

// Rank `rank` of two; building and initializing a model needs no collective.
class NoExchange final : public Communicator {
 public:
  explicit NoExchange(int rank) : rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return 2; }
  std::string backend() const override { return "none"; }
  void all_reduce_sum(float*, size_t) override { refuse(); }
  void all_reduce_sum(double*, size_t) override { refuse(); }
  void all_reduce_sum(int64_t*, size_t) override { refuse(); }
  void reduce_scatter_sum(const float*, float*, size_t) override { refuse(); }
  void reduce_scatter_sum(const double*, double*, size_t) override { refuse(); }
  void all_gather(const float*, float*, size_t) override { refuse(); }
  void broadcast(void*, size_t, int) override { refuse(); }
  void barrier() override { refuse(); }
  void all_to_all(const void*, const size_t*, void*, const size_t*) override { refuse(); }

 private:
  [[noreturn]] static void refuse() { throw std::logic_error("no collective in this test"); }
  int rank_;
};

template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(runtime_expert_parallel, ARankHoldsItsBlockOfExpertsAndTheLayoutListsThemAll) {
  NemotronHConfig c = tiny_config("M*E-E");
  NemotronH whole(c);
  NoExchange comm(1);
  NemotronH half(c, &comm, 2);
  ASSERT_EQ(half.expert_comm(), &comm);
  const auto& layout = half.parameter_layout();
  ASSERT_EQ(layout.size(), whole.parameters().size());
  size_t local = 0;
  for (size_t i = 0; i < layout.size(); ++i) {
    const Parameter& w = *whole.parameters()[i];
    EXPECT_EQ(layout[i].name, w.name) << i;  // the order of one rank's checkpoint
    EXPECT_EQ(layout[i].shape, w.value.shape()) << w.name;
    const bool expert = w.name.find(".experts.") != std::string::npos;
    const bool ours = w.name.find(".experts.2.") != std::string::npos || w.name.find(".experts.3.") != std::string::npos;
    if (expert && !ours) {
      EXPECT_EQ(layout[i].local, nullptr) << w.name;
      EXPECT_EQ(layout[i].owner, 0) << w.name;
      continue;
    }
    ASSERT_NE(layout[i].local, nullptr) << w.name;
    EXPECT_EQ(layout[i].local->expert_shard, expert) << w.name;
    ++local;
  }
  EXPECT_EQ(half.parameters().size(), local);
  EXPECT_EQ(whole.parameters().size() - local, 2u * 2u * 2u) << "two MoE layers, two experts elsewhere, up and down";
}

TEST(runtime_expert_parallel, EveryRankDrawsTheWeightsOneRankHas) {
  NemotronHConfig c = tiny_config("M*E-E");
  NemotronH whole(c);
  whole.init_weights(7);
  for (int rank : {0, 1}) {
    NoExchange comm(rank);
    NemotronH part(c, &comm, 2);
    part.init_weights(7);
    for (Parameter* p : part.parameters()) {
      const Parameter* w = whole.find(p->name);
      ASSERT_NE(w, nullptr) << p->name;
      ASSERT_EQ(p->value.numel(), w->value.numel());
      for (int64_t i = 0; i < p->value.numel(); ++i)
        ASSERT_EQ(p->value.f32()[i], w->value.f32()[i]) << p->name << " on rank " << rank;
    }
  }
}

TEST(runtime_expert_parallel, LayoutsThatCannotWorkAreRefusedNamingTheKey) {
  NemotronHConfig c = tiny_config("M*E-E");
  NoExchange comm(0);
  c.n_routed_experts = 3;
  EXPECT_NE(
      error_of([&] { NemotronH m(c, &comm, 2); }).find("3 routed experts (n_routed_experts) do not split evenly over 2 ranks"),
      std::string::npos);
  c.n_routed_experts = 4;
  EXPECT_NE(error_of([&] { NemotronH m(c, &comm, 3); }).find("groups of 3 ranks do not divide the 2 ranks"), std::string::npos);
  NemotronH m(c, &comm, 2);
  EXPECT_NE(error_of([&] { m.add_lora(LoraConfig{}); }).find("LoRA on a model whose experts are split"), std::string::npos);

  using nlohmann::json;
  EXPECT_NE(error_of([] {
              read_parallel_table(json{{"parallel", {{"ep", 3}}}}, 2);
            }).find("parallel.ep: 3 does not divide the job's 2 rank(s)"),
            std::string::npos);
  // ZeRO-1 over expert parallel is a layout of its own (the experts' moments stay whole).
  const ParallelOptions both = read_parallel_table(json{{"parallel", {{"ep", 2}, {"zero", 1}}}}, 2);
  EXPECT_EQ(both.ep, 2);
  EXPECT_EQ(both.zero, 1);
  EXPECT_EQ(read_parallel_table(json{{"parallel", {{"ep", 2}}}}, 2).ep, 2);
  EXPECT_EQ(read_parallel_table(json{{"parallel", {{"ep", 2}}}}, 4).ep, 2) << "two groups of two ranks";
  EXPECT_EQ(read_parallel_table(json::object(), 2).ep, 1) << "experts stay whole unless asked";
  ParallelOptions two;
  two.dp = two.ep = 2;
  EXPECT_NE(
      error_of([&] { check_expert_parallel(two, tiny_config("M*-")); }).find("parallel.ep: 2, but the model has no MoE layer"),
      std::string::npos);
  c.n_routed_experts = 5;
  EXPECT_NE(error_of([&] { check_expert_parallel(two, c); }).find("parallel.ep: 2 does not divide model.n_routed_experts = 5"),
            std::string::npos);
  EXPECT_NE(error_of([&] { refuse_expert_parallel(two, "my_stage"); }).find("parallel.ep: 2: my_stage does not split experts"),
            std::string::npos);
  ParallelOptions one;
  EXPECT_NO_THROW(refuse_expert_parallel(one, "my_stage"));
}

// The memory plan's routed experts are the model's ".experts." tensors, and a rank of ep holds
// 1/ep of them (weights, gradients, their sums, the moments) and the rest whole.
TEST(runtime_expert_parallel, MemoryPlanDividesTheExpertsByEp) {
  NemotronHConfig c = tiny_config("M*E-E");
  NemotronH whole(c);
  long double experts = 0;
  for (Parameter* p : whole.parameters())
    if (p->name.find(".experts.") != std::string::npos) experts += (long double)p->value.numel();
  EXPECT_EQ(routed_expert_parameters(c), experts);
  MemoryLayout one, two;
  two.data_parallel = two.expert_parallel = 2;
  const MemoryPlan a = plan_memory(c, one), b = plan_memory(c, two);
  EXPECT_EQ(b.rank_parameters, a.parameters - experts / 2);
  for (auto [x, y] : {std::pair{a.weights, b.weights}, std::pair{a.gradients, b.gradients},
                      std::pair{a.gradient_sums, b.gradient_sums}, std::pair{a.optimizer, b.optimizer}})
    EXPECT_DOUBLE_EQ(double(x - y), double(x / a.parameters * experts / 2));
  EXPECT_NE(memory_plan_text(b, two).find("routed experts 1/2 per rank"), std::string::npos) << memory_plan_text(b, two);
}
