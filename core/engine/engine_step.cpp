// One engine step, phase by phase (the list is in engine.h). Each phase is the only place its
// plugin calls are made, and says what a call that throws costs: the step (step_wide, the step is
// redone), one sequence (seq_failures, it is requeued), or nothing but an offer (a connector's
// loadable tokens, a drafter's drafts: the sequence computes instead).
#include <algorithm>
#include <chrono>
#include <thread>

#include "core/engine/engine.h"
#include "core/sampling/speculative_verify.h"

namespace loom {

namespace {

// Whether the host sampler must see the logits: penalties and held-back tokens depend on the
// sequence's tokens, which only the host has, and log-probabilities are computed there (from the
// row before penalties). Without them, greedy and sampling (temperature, top-k, min-p, top-p) run
// where the logits are.
bool needs_host_sampling(const Sequence& seq) {
  const SamplingParams& p = seq.params;
  return p.repetition_penalty != 1.0 || p.presence_penalty != 0.0 || p.frequency_penalty != 0.0 ||
         seq.num_output_tokens() < static_cast<std::size_t>(std::max(0, p.min_tokens));
}

// A sequence about to decode takes drafts (verified_on_host says where they are checked).
bool takes_drafts(const Sequence& seq) {
  return seq.state == sdk::SeqState::running && seq.num_computed_tokens + 1 == seq.tokens.size();
}

// Drafts are verified where the logits are (on the GPU for a GPU run) unless the sequence needs
// the host sampler (penalties, min_tokens): see Engine::run_model.
bool verified_on_host(const Sequence& seq) { return needs_host_sampling(seq); }

}  // namespace

bool Engine::StepWork::failed(sdk::SeqId id) const {
  return std::any_of(seq_failures.begin(), seq_failures.end(), [&](const auto& f) { return f.first == id; });
}

std::vector<RequestResult> Engine::step() {
  StepWork work;
  work.out = std::exchange(finished_, {});
  if (sequences_.empty()) return std::move(work.out);
  ++tick_;
  ++stats_.steps;
  try {
    offer_external_kv();
    propose_drafts();
    schedule(work);
    hand_over_blocks(work);
    if (work.plan.scheduled.empty()) return idle_step(std::move(work));
    lay_out_batch(work);
    load_external_kv(work);
    run_model(work);
    failed_steps_in_a_row_ = 0;
    commit_kv(work);
    emit_tokens(work);
    save_external_kv(work);
    retire_finished(work);
  } catch (const StepFailure& failure) {
    return fail_step(failure.what(), std::move(work.out));
  }
  for (const auto& [id, error] : work.seq_failures) fail_sequence(sequences_.at(id), error, work.out);
  return std::move(work.out);
}

void Engine::offer_external_kv() {
  for (auto& [id, seq] : sequences_) {
    seq.loadable_from = seq.num_loadable_tokens = 0;
    seq.awaiting_external_kv = false;
    if (!plugins_.connector || seq.state != sdk::SeqState::waiting || seq.external_kv_failed ||
        seq.needs_prompt_logprobs())
      continue;
    try_call("kv_connector.num_loadable_tokens()", [&] {
      const std::size_t local = plugins_.allocator->num_cached_prefix_tokens(seq.tokens);
      const std::size_t bs = stats_.block_size;
      const std::size_t loadable =
          plugins_.connector->num_loadable_tokens(seq.tokens, seq.block_hashes(seq.tokens.size() / bs, bs), local);
      if (loadable == sdk::KvConnector::kLoadPending) {
        seq.awaiting_external_kv = true;
        return;
      }
      if (loadable % stats_.block_size != 0 || local + loadable > seq.tokens.size())
        throw Error("it offered " + std::to_string(loadable) + " tokens after " + std::to_string(local) +
                    " cached ones of a " + std::to_string(seq.tokens.size()) +
                    "-token sequence; offers are whole blocks within the sequence");
      seq.loadable_from = local;
      seq.num_loadable_tokens = loadable;
    });
  }
}

void Engine::propose_drafts() {
  if (!plugins_.drafter) return;
  std::vector<sdk::DraftRequest> requests;
  std::vector<Sequence*> drafting;
  for (auto& [id, seq] : sequences_) {
    seq.drafts.clear();
    seq.draft_probabilities.clear();
    if (!takes_drafts(seq)) continue;
    if (seq.draft_pause > 0) {
      --seq.draft_pause;
      continue;
    }
    const std::size_t k = plugins_.num_draft_tokens;
    const std::size_t limit = plugins_.adaptive_drafts ? std::min(k, seq.draft_limit) : k;
    // The drafter's draws: from the request's seed and the sequence's length, not the batch.
    const std::uint64_t seed = derive_seed(seq.rng.seed(), seq.tokens.size());
    requests.push_back({id, seq.tokens, limit, static_cast<float>(seq.params.temperature), seed});
    drafting.push_back(&seq);
  }
  if (requests.empty()) return;
  const auto vocab = static_cast<sdk::TokenId>(model_->config().vocab_size);
  std::vector<std::vector<sdk::TokenId>> drafts(requests.size());
  std::vector<std::vector<float>> probabilities(requests.size());
  const std::string error = try_call("drafter.propose()", [&] {
    plugins_.drafter->propose_with_probabilities(requests, drafts, probabilities);
    if (drafts.size() != requests.size() || probabilities.size() != requests.size())
      throw Error("it returned " + std::to_string(drafts.size()) + " draft lists and " +
                  std::to_string(probabilities.size()) + " probability lists for " + std::to_string(requests.size()) +
                  " requests");
    for (std::size_t i = 0; i < drafts.size(); ++i)
      if (!probabilities[i].empty() && probabilities[i].size() != drafts[i].size() * static_cast<std::size_t>(vocab))
        throw Error("it returned " + std::to_string(probabilities[i].size()) + " probabilities for " +
                    std::to_string(drafts[i].size()) + " drafts over a vocabulary of " + std::to_string(vocab) +
                    ": a row of the vocabulary's size per draft, or none");
  });
  if (!error.empty()) return;  // no drafts this step: every sequence decodes one token
  for (std::size_t i = 0; i < drafting.size(); ++i) {
    std::vector<sdk::TokenId>& d = drafts[i];
    if (d.size() > requests[i].max_draft_tokens) d.resize(requests[i].max_draft_tokens);
    // A token outside the vocabulary would fail the whole forward: such a draft ends there.
    d.erase(std::find_if(d.begin(), d.end(), [&](sdk::TokenId t) { return t < 0 || t >= vocab; }), d.end());
    if (!probabilities[i].empty()) probabilities[i].resize(d.size() * static_cast<std::size_t>(vocab));
    drafting[i]->drafts = std::move(d);
    drafting[i]->draft_probabilities = std::move(probabilities[i]);
  }
}

void Engine::schedule(StepWork& work) {
  std::vector<sdk::SequenceView> views;
  views.reserve(sequences_.size());
  for (const auto& [id, seq] : sequences_) {
    if (seq.awaiting_external_kv) continue;
    sdk::SequenceView view{id,
                           seq.state,
                           seq.tokens,
                           seq.num_prompt_tokens,
                           seq.num_computed_tokens,
                           seq.max_total_tokens,
                           seq.arrival_step,
                           0};
    view.loadable_from = seq.loadable_from;
    view.num_loadable_tokens = seq.num_loadable_tokens;
    view.num_draft_tokens = seq.drafts.size();
    views.push_back(view);
  }
  step_wide("scheduler.schedule()", [&] {
    work.plan = plugins_.scheduler->schedule(views, *scheduler_allocator_, budget_, tick_);
    check_plan(work.plan);
  });
  for (const sdk::RejectedSeq& rejected : work.plan.rejected) {
    auto it = sequences_.find(rejected.id);
    finish(it->second, "error", work.out);
    work.out.back().error = rejected.reason;
    ++stats_.rejected;
    finish_unforked_samples(it->second, work.out);
    forget(rejected.id);
    sequences_.erase(it);
  }
  for (sdk::SeqId id : work.plan.preempted) {
    Sequence& seq = sequences_.at(id);
    seq.state = sdk::SeqState::waiting;
    seq.num_computed_tokens = 0;
    ++seq.num_preemptions;
    ++stats_.preemptions;
    forget(id);
  }
}

void Engine::hand_over_blocks(StepWork&) {
  std::vector<sdk::BlockCopy> copies;
  std::vector<sdk::EvictedBlock> evicted;
  step_wide("kv_allocator.take_pending_copies()", [&] {
    copies = plugins_.allocator->take_pending_copies();
    evicted = plugins_.allocator->take_evictions();
  });
  // The evicted blocks' content is intact until this step writes them — a copy-on-write below
  // may be the first — so the connector is handed them first.
  if (plugins_.connector && !evicted.empty())
    try_call("kv_connector.on_evicted()", [&] { plugins_.connector->on_evicted(evicted, cache_->view(), cache_->stream()); });
  for (const sdk::BlockCopy& copy : copies) cache_->copy_block(copy.src, copy.dst);
}

std::vector<RequestResult> Engine::idle_step(StepWork work) {
  const bool awaiting_kv = std::any_of(sequences_.begin(), sequences_.end(),
                                       [](const auto& entry) { return entry.second.awaiting_external_kv; });
  if (work.out.empty() && work.plan.preempted.empty() && awaiting_kv) {
    // Nothing to run until the connector's KV arrives: pause briefly rather than spin.
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    return std::move(work.out);
  }
  if (work.out.empty() && work.plan.preempted.empty())  // a stall; transient when allocations fail at random
    return fail_step("the scheduler made no progress with " + std::to_string(sequences_.size()) +
                         " unfinished sequences (a scheduler plugin bug, or a KV pool too small for any of them)",
                     std::move(work.out));
  if (!work.out.empty()) failed_steps_in_a_row_ = 0;  // a step that only preempts is no progress
  return std::move(work.out);
}

// A prompt's log-probability rows share the step's logit rows (max_logit_rows) with the
// sampling rows, so a chunk of a prompt that asks for them ends where its rows would not fit;
// the rest of the prompt runs in the next steps. Each scheduled sequence is owed 1 + k rows, so
// one row is always left while the scheduler keeps to max_num_seqs.
void Engine::fit_prompt_rows(std::vector<sdk::ScheduledSeq>& scheduled) const {
  const std::size_t limit = max_logit_rows(budget_.max_num_seqs, budget_.max_num_batched_tokens,
                                           static_cast<std::uint32_t>(plugins_.num_draft_tokens));
  auto group_rows = [&](const sdk::ScheduledSeq& s) -> std::size_t {
    return s.start + s.num_tokens == sequences_.at(s.id).tokens.size() ? 1 + s.num_lookahead_tokens : 0;
  };
  std::size_t used = 0;
  for (const sdk::ScheduledSeq& s : scheduled) used += group_rows(s);
  for (sdk::ScheduledSeq& s : scheduled) {
    const Sequence& seq = sequences_.at(s.id);
    if (!seq.needs_prompt_logprobs() || s.start > seq.prompt_logprobs.size()) continue;
    // Rows for positions [first, last): a recomputed chunk (after preemption) needs none before first.
    const std::size_t first = seq.prompt_logprobs.size();
    const std::size_t last = std::min(s.start + s.num_tokens, seq.num_prompt_tokens - 1);
    if (last <= first) continue;
    const std::size_t wanted = last - first, own = group_rows(s), others = used - own;
    const std::size_t free = limit > others ? limit - others : 0;
    if (wanted + own <= free) {
      used += wanted;
      continue;
    }
    // Cut: the chunk ends at or before the prompt's last token, so it samples no row.
    const std::size_t rows = std::clamp<std::size_t>(free, 1, wanted);
    s.num_tokens = first + rows - s.start;
    used = others + rows;
  }
}

void Engine::lay_out_batch(StepWork& work) {
  fit_prompt_rows(work.plan.scheduled);
  for (const sdk::ScheduledSeq& s : work.plan.scheduled) {
    Sequence& seq = sequences_.at(s.id);
    seq.state = sdk::SeqState::running;
    sdk::AttentionSeq a;
    a.id = s.id;
    a.q_start = static_cast<std::uint32_t>(work.tokens.size());
    a.q_len = static_cast<std::uint32_t>(s.num_tokens + s.num_lookahead_tokens);
    a.ctx_len = static_cast<std::uint32_t>(s.start + s.num_tokens + s.num_lookahead_tokens);
    if (std::string error = table_for(s.id, a.ctx_len, a.block_table); !error.empty()) {
      work.seq_failures.emplace_back(s.id, std::move(error));  // left out of this step's batch
      continue;
    }
    work.layout.push_back(a);
    work.scheduled_of.push_back(&s);
    for (std::size_t i = 0; i < s.num_tokens; ++i) work.tokens.push_back(seq.tokens[s.start + i]);
    work.tokens.insert(work.tokens.end(), seq.drafts.begin(), seq.drafts.begin() + s.num_lookahead_tokens);
    for (std::size_t p = s.start; p < a.ctx_len; ++p) work.positions.push_back(static_cast<std::int32_t>(p));
    if (s.start < seq.num_prompt_tokens)
      stats_.computed_prompt_tokens += std::min(seq.num_prompt_tokens, s.start + s.num_tokens) - s.start;
    stats_.loaded_tokens += s.num_loaded_tokens;
    const std::size_t end = s.start + s.num_tokens;
    if (s.start < seq.ever_computed_tokens)
      stats_.recomputed_tokens += std::min(end, seq.ever_computed_tokens) - s.start;
    seq.ever_computed_tokens = std::max(seq.ever_computed_tokens, end);
    if (s.num_loaded_tokens > 0) work.loading.push_back(s.id);
    if (seq.needs_prompt_logprobs() && s.start <= seq.prompt_logprobs.size())
      for (std::size_t p = seq.prompt_logprobs.size(); p < std::min(end, seq.num_prompt_tokens - 1); ++p)
        work.prompt_rows.push_back({&seq, p, static_cast<std::int32_t>(a.q_start + p - s.start)});
    if (s.start + s.num_tokens == seq.tokens.size()) {
      // The last token's row, then one row after each draft: the target's token at each place.
      work.groups.push_back({&seq, work.logit_rows.size(), s.num_lookahead_tokens, 0, {}});
      for (std::size_t r = 0; r <= s.num_lookahead_tokens; ++r)
        work.logit_rows.push_back(static_cast<std::int32_t>(a.q_start + s.num_tokens - 1 + r));
    }
  }
  work.first_prompt_row = work.logit_rows.size();
  for (const StepWork::PromptRow& r : work.prompt_rows) work.logit_rows.push_back(r.batch_index);
  stats_.batched_tokens += work.tokens.size();
  if (step_log_) {
    StepRecord record;
    record.tokens = static_cast<std::uint32_t>(work.tokens.size());
    record.rows = static_cast<std::uint32_t>(work.logit_rows.size());
    for (const sdk::AttentionSeq& a : work.layout) {
      const std::uint64_t q = a.q_len, ctx = a.ctx_len;
      record.kv_tokens += ctx;
      record.attention_pairs += q * (ctx - q) + q * (q + 1) / 2;
    }
    step_log_->push_back(record);
  }
}

void Engine::load_external_kv(StepWork& work) {
  if (work.loading.empty()) return;
  std::vector<sdk::KvTransfer> loads;
  for (std::size_t i = 0; i < work.layout.size(); ++i) {
    const sdk::ScheduledSeq& s = *work.scheduled_of[i];
    if (s.num_loaded_tokens == 0) continue;
    Sequence& seq = sequences_.at(s.id);
    const std::size_t first = s.start - s.num_loaded_tokens, bs = stats_.block_size;
    loads.push_back({s.id, first, s.num_loaded_tokens,
                     work.layout[i].block_table.subspan(first / bs, s.num_loaded_tokens / bs),
                     seq.block_hashes(s.start / bs, bs).subspan(first / bs)});
  }
  const std::string error =
      try_call("kv_connector.start_load()", [&] { plugins_.connector->start_load(loads, cache_->view(), cache_->stream()); });
  if (error.empty()) return;
  // Nothing was computed yet: the step is redone, these sequences computing what they would load.
  for (sdk::SeqId id : work.loading) sequences_.at(id).external_kv_failed = true;
  throw StepFailure(error);
}

void Engine::run_model(StepWork& work) {
  ForwardBatch batch{work.tokens, work.positions, work.layout, work.logit_rows, {}};
  // Loads are waited for layer by layer where the model can (each layer's compute overlapping
  // the later layers' copies), else all before the forward.
  auto wait_for_load = [&](const char* what, const std::function<void()>& wait) {
    if (const std::string error = try_call(what, wait); !error.empty()) {
      for (sdk::SeqId id : work.loading) sequences_.at(id).external_kv_failed = true;
      throw StepFailure(error);
    }
  };
  if (!work.loading.empty() && model_->waits_layer_by_layer()) {
    batch.before_layer = [&](std::uint32_t layer) {
      wait_for_load("kv_connector.wait_for_layer_load()",
                    [&] { plugins_.connector->wait_for_layer_load(layer, cache_->stream()); });
    };
  } else if (!work.loading.empty()) {
    wait_for_load("kv_connector.wait_for_load()", [&] { plugins_.connector->wait_for_load(cache_->stream()); });
  }
  const std::size_t vocab = static_cast<std::size_t>(model_->config().vocab_size);
  const std::size_t rows = work.logit_rows.size();
  // Each row's token is chosen where the logits are unless the host sampler must see them. A
  // sampled row's draws are taken from a copy of its stream, kept only if the step counts, so a
  // failed and redone step draws the same numbers again. A sampled sequence's drafts:
  //  - a point mass (the n-gram drafter's): the row samples with the stream's next draw and the
  //    draft stands while it equals the sample — the rejection rule for a point mass (kept with
  //    probability p(draft), else a draw from p without it) drawing each emitted token as
  //    decoding without drafts would;
  //  - with the drafter's probabilities q: the row verifies the draft by the full rule
  //    (OutputRow::Kind::verify, two draws), returning the draft or its replacement.
  // The row after the drafts samples as without drafts.
  output_rows_.assign(rows, OutputRow{});
  row_rngs_.assign(rows, SequenceRng(0));
  tokens_.assign(rows, 0);
  for (const RowGroup& g : work.groups) {
    Sequence& seq = *g.seq;
    SequenceRng rng = seq.rng;
    for (std::size_t r = g.first_row; r <= g.first_row + g.lookahead; ++r) {
      OutputRow& row = output_rows_[r];
      const std::size_t position = r - g.first_row;
      row.params = &seq.params;
      if (needs_host_sampling(seq)) {
        row.kind = OutputRow::Kind::logits;
      } else if (seq.params.temperature != 0.0 && position < g.lookahead && !seq.draft_probabilities.empty()) {
        row.kind = OutputRow::Kind::verify;
        row.draft = seq.drafts[position];
        row.draft_q = std::span<const float>(seq.draft_probabilities).subspan(position * vocab, vocab);
        row.draws = next_verify_draws(rng);
      } else if (seq.params.temperature != 0.0) {
        row.kind = OutputRow::Kind::sample;
        row.uniform = rng.next_uniform();
      }
      if (row.kind != OutputRow::Kind::logits) row.logprobs = seq.params.logprobs;  // where the logits are
      row_rngs_[r] = rng;  // the stream after this row's draws
    }
  }
  for (std::size_t i = 0; i < work.prompt_rows.size(); ++i) {  // scored where the logits are
    const StepWork::PromptRow& prompt_row = work.prompt_rows[i];
    OutputRow& row = output_rows_[work.first_prompt_row + i];
    row.kind = OutputRow::Kind::score;
    row.logprobs = prompt_row.seq->params.prompt_logprobs;
    tokens_[work.first_prompt_row + i] = prompt_row.seq->tokens[prompt_row.position + 1];
  }
  if (logits_.size() < rows * vocab) logits_.resize(rows * vocab);
  step_wide("model.forward() (attention plugin)", [&] {
    model_->forward(batch, *plugins_.attention, cache_->view());
    model_->read_outputs(output_rows_, std::span<float>(logits_.data(), rows * vocab), tokens_);
    if (std::any_of(output_rows_.begin(), output_rows_.end(), [](const OutputRow& r) { return r.logprobs >= 0; })) {
      row_logprobs_.resize(rows);
      model_->read_logprobs(output_rows_, tokens_, row_logprobs_);
    }
  });
}

void Engine::commit_kv(StepWork& work) {
  std::size_t group = 0;
  for (std::size_t i = 0; i < work.layout.size(); ++i) {
    const sdk::AttentionSeq& a = work.layout[i];
    const sdk::ScheduledSeq& s = *work.scheduled_of[i];
    Sequence& seq = sequences_.at(a.id);
    std::size_t accepted = 0;
    if (group < work.groups.size() && work.groups[group].seq == &seq) {
      RowGroup& g = work.groups[group++];
      if (g.lookahead > 0 && verified_on_host(seq))
        verify_on_host(g);
      else
        while (g.accepted < g.lookahead && seq.drafts[g.accepted] == tokens_[g.first_row + g.accepted]) ++g.accepted;
      accepted = g.accepted;
      stats_.draft_tokens += g.lookahead;
      stats_.accepted_draft_tokens += g.accepted;
      stats_.verify_rows += g.lookahead > 0;
    }
    // KV is valid for the tokens computed and the drafts accepted; rejected drafts' slots go back.
    seq.num_computed_tokens = a.ctx_len - s.num_lookahead_tokens + accepted;
    if (std::string error = try_call("kv_allocator.commit()",
                                     [&] {
                                       std::vector<std::int32_t> with_drafts;
                                       std::span<const std::int32_t> committed(
                                           seq.tokens.data(), std::min(seq.num_computed_tokens, seq.tokens.size()));
                                       if (accepted > 0) {
                                         with_drafts.assign(seq.tokens.begin(), seq.tokens.end());
                                         with_drafts.insert(with_drafts.end(), seq.drafts.begin(),
                                                            seq.drafts.begin() + accepted);
                                         committed = with_drafts;
                                       }
                                       plugins_.allocator->commit(a.id, committed, tick_);
                                       if (s.num_lookahead_tokens > 0)
                                         plugins_.allocator->trim(a.id, seq.num_computed_tokens, tick_);
                                     });
        !error.empty())
      work.seq_failures.emplace_back(a.id, std::move(error));
    else
      seq.failures_in_a_row = 0;
  }
}

// For sequences the host sampler must see (penalties, min_tokens): each draft against
// the target's distribution at its position, given the output so far and the drafts accepted
// before it (penalties and min_tokens see them). Greedy and point-mass drafts: the token is
// chosen as without drafts (one draw when sampled) and the draft stands if it is that token (the
// point-mass rule, as on the device); drafts with the drafter's probabilities: verify_draft.
// After a rejection the replacement is the emitted token; after all are accepted, a token is
// sampled from the last row as without drafts.
void Engine::verify_on_host(RowGroup& g) {
  Sequence& seq = *g.seq;
  const std::size_t vocab = static_cast<std::size_t>(model_->config().vocab_size);
  std::vector<std::int32_t> output(seq.output().begin(), seq.output().end());
  std::vector<float> row(vocab);
  std::vector<TokenProbability> p;
  g.host_verified = true;
  g.rng = seq.rng;
  for (std::size_t i = 0; i <= g.lookahead; ++i) {
    const float* logits = logits_.data() + (g.first_row + i) * vocab;
    row.assign(logits, logits + vocab);
    if (i == g.lookahead) {  // every draft accepted: the next token as without drafts
      g.token = sample_token(row, seq.params, seq.prompt(), output, eos_ids_, g.rng);
      return;
    }
    const std::int32_t draft = seq.drafts[i];
    DraftVerdict verdict;
    if (seq.params.temperature == 0.0 || seq.draft_probabilities.empty()) {
      // Greedy, or a point-mass draft: the token as without drafts, the draft standing if equal.
      verdict.token = sample_token(row, seq.params, seq.prompt(), output, eos_ids_, g.rng);
      verdict.accepted = verdict.token == draft;
    } else {
      apply_penalties(row, seq.params, seq.prompt(), output, eos_ids_);
      sampling_distribution(row, seq.params, p);
      verdict = verify_draft(p, draft, std::span(seq.draft_probabilities).subspan(i * vocab, vocab),
                             next_verify_draws(g.rng));
    }
    if (!verdict.accepted) {
      g.token = verdict.token;
      return;
    }
    ++g.accepted;
    output.push_back(draft);
  }
}

// A verify step costs a row per draft (and on a GPU, a graph per new padded size): a sequence
// starts with one draft, drafts all accepted earn one more, up to num_draft_tokens; drafts
// rejected outright halve the number, down to a pause that doubles while nothing is accepted.
// With [speculative] adaptive = false every step asks for num_draft_tokens.
void Engine::adapt_drafts(Sequence& seq, std::size_t proposed, std::size_t accepted) const {
  if (!plugins_.adaptive_drafts) return;
  const std::size_t k = plugins_.num_draft_tokens;
  std::size_t& limit = seq.draft_limit;
  if (accepted == 0) {
    limit /= 2;
    if (limit == 0) {
      seq.draft_pause = seq.draft_backoff;
      seq.draft_backoff = std::min<std::uint32_t>(seq.draft_backoff * 2, 64);
      limit = 1;  // what it tries after the pause
    }
    return;
  }
  seq.draft_backoff = 1;
  if (accepted == proposed) limit = std::min(k, limit + 1);
}

void Engine::emit_tokens(StepWork& work) {
  const std::size_t vocab = static_cast<std::size_t>(model_->config().vocab_size);
  for (std::size_t i = 0; i < work.prompt_rows.size(); ++i) {
    Sequence& seq = *work.prompt_rows[i].seq;
    if (work.failed(seq.id) || seq.prompt_logprobs.size() != work.prompt_rows[i].position) continue;
    seq.prompt_logprobs.push_back(std::move(row_logprobs_[work.first_prompt_row + i]));
  }
  for (RowGroup& g : work.groups) {
    Sequence& seq = *g.seq;
    if (work.failed(seq.id)) continue;  // its step did not count: no token
    if (seq.params.max_tokens == 0) {   // asked only for the prompt's log-probabilities
      if (!seq.unforked_samples.empty()) fork_samples(seq);
      g.finish_reason = "length";
      continue;
    }
    if (g.lookahead > 0 && plugins_.drafter) {
      try_call("drafter.on_accepted()", [&] { plugins_.drafter->on_accepted(seq.id, g.accepted); });
      adapt_drafts(seq, g.lookahead, g.accepted);
    }
    std::vector<std::int32_t> emitted(seq.drafts.begin(), seq.drafts.begin() + g.accepted);
    std::int32_t token = tokens_[g.first_row + g.accepted];
    std::vector<float> unpenalised;  // the row sample_token changes in place, for logprobs
    if (g.host_verified) {
      token = g.token;
      seq.rng = g.rng;
    } else if (output_rows_[g.first_row].kind == OutputRow::Kind::logits) {
      std::span<float> row(logits_.data() + g.first_row * vocab, vocab);
      if (seq.params.logprobs >= 0) unpenalised.assign(row.begin(), row.end());
      token = sample_token(row, seq.params, seq.prompt(), seq.output(), eos_ids_, seq.rng);
    } else {
      seq.rng = row_rngs_[g.first_row + g.accepted];  // a draw per emitted token
    }
    emitted.push_back(token);
    for (std::size_t i = 0; i < emitted.size(); ++i) {
      g.finish_reason = append_token(seq, emitted[i]);
      // Token i came from row first_row + i: its log-probability was computed where the logits
      // are (read_logprobs), or is computed here from the row the host sampled.
      if (seq.params.logprobs >= 0 && output_rows_[g.first_row + i].kind != OutputRow::Kind::logits) {
        seq.logprobs.push_back(std::move(row_logprobs_[g.first_row + i]));
      } else if (seq.params.logprobs >= 0) {
        const float* row = unpenalised.empty() ? logits_.data() + (g.first_row + i) * vocab : unpenalised.data();
        seq.logprobs.push_back(token_logprobs({row, vocab}, emitted[i], seq.params.logprobs));
      }
      if (!g.finish_reason.empty()) break;  // the rest of the accepted drafts are not output
    }
    if (!seq.unforked_samples.empty() && seq.num_computed_tokens >= seq.num_prompt_tokens) fork_samples(seq);
  }
}

// Each sample shares the parent's blocks and recomputes only the last prompt token, whose logits
// it samples its own first token from (its write goes to a private copy of the shared block).
// Where the allocator cannot fork, a sample starts over as a waiting sequence: slower, same tokens.
void Engine::fork_samples(Sequence& parent) {
  for (Sequence& sample : parent.unforked_samples) {
    const sdk::SeqId id = sample.id;
    sample.prompt_logprobs = parent.prompt_logprobs;  // computed with the prompt, shared by every sample
    if (try_call("kv_allocator.fork()", [&] { plugins_.allocator->fork(parent.id, id, tick_); }).empty()) {
      sample.state = sdk::SeqState::running;
      sample.num_computed_tokens = sample.num_prompt_tokens - 1;
    } else {
      release_blocks(id);  // whatever a failed fork left
    }
    sequences_.emplace(id, std::move(sample));
  }
  parent.unforked_samples.clear();
}

void Engine::save_external_kv(StepWork& work) {
  if (!plugins_.connector) return;
  const std::size_t bs = stats_.block_size;
  std::vector<sdk::KvTransfer> saves;
  for (std::size_t i = 0; i < work.layout.size(); ++i) {
    const sdk::ScheduledSeq& s = *work.scheduled_of[i];
    if (work.failed(s.id)) continue;
    Sequence& seq = sequences_.at(s.id);
    // Blocks that became full this step: computed here (loaded ones the connector has already).
    const std::size_t first_block = s.start / bs, end_block = seq.num_computed_tokens / bs;
    if (end_block <= first_block) continue;
    saves.push_back({s.id, first_block * bs, (end_block - first_block) * bs,
                     work.layout[i].block_table.subspan(first_block, end_block - first_block),
                     seq.block_hashes(end_block, bs).subspan(first_block)});
    stats_.saved_blocks += end_block - first_block;
  }
  if (!saves.empty())
    try_call("kv_connector.save()", [&] { plugins_.connector->save(saves, cache_->view(), cache_->stream()); });
}

void Engine::retire_finished(StepWork& work) {
  for (RowGroup& g : work.groups) {
    if (g.finish_reason.empty()) continue;
    const sdk::SeqId id = g.seq->id;
    release_blocks(id);
    forget(id);
    finish(*g.seq, g.finish_reason, work.out);
    sequences_.erase(id);
  }
}

void Engine::forget(sdk::SeqId id) {
  if (plugins_.connector) try_call("kv_connector.on_finished()", [&] { plugins_.connector->on_finished(id); });
  if (plugins_.drafter) try_call("drafter.on_finished()", [&] { plugins_.drafter->on_finished(id); });
}

}  // namespace loom
