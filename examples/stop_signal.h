// The examples' Ctrl-C: SIGINT and SIGTERM end a run after the step in progress, which then writes
// the checkpoint and report of that step; a second signal kills at once.
#pragma once

#include <signal.h>

#include <csignal>

inline volatile std::sig_atomic_t stop_signal = 0;

inline void on_stop_signal(int signal) { stop_signal = signal; }

// SIGINT and SIGTERM end the run after the step in progress. SA_RESETHAND: a second one kills at once.
inline void catch_stop_signals()
{
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    action.sa_flags = SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
}

