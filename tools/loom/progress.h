// The progress line long commands draw on a terminal's standard error (never into results).
#pragma once

#include <cstddef>
#include <cstdint>

namespace loom::cli {

// Redraws "LABEL[#####     ] 12/256 requests  3400.0 tok/s  ETA 41 s" in place; the ETA is "?"
// until a request has finished. Call finish_progress() once after the last draw (ends the line),
// or erase_progress() to blank it and return to its start (for a summary in its place).
void draw_progress(std::size_t done, std::size_t total, std::uint64_t tokens, double elapsed_s, const char* label = "");
void finish_progress();
void erase_progress();

// Whether standard error is a terminal (progress lines are drawn only there).
bool progress_wanted();

}  // namespace loom::cli
