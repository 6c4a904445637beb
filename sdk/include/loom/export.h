// Symbol visibility for types shared between the engine and plugins.
//
// Plugins are built with -fvisibility=hidden so that two plugins never collide. Types that cross
// the boundary (exceptions, interfaces) keep default visibility so that catch clauses and
// dynamic_cast agree on their identity in every loaded module.
#pragma once

#define LOOM_SDK_VISIBLE __attribute__((visibility("default")))
