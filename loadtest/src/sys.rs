//! What the load generator reads of the machine: its own CPU time, another process's CPU time
//! and resident memory (the server's, from /proc), and the open-file limit.

/// CPU time of a process, user and system apart.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Cpu {
    pub user_s: f64,
    pub system_s: f64,
}

impl Cpu {
    pub fn since(self, before: Cpu) -> Cpu {
        Cpu { user_s: self.user_s - before.user_s, system_s: self.system_s - before.system_s }
    }
    pub fn total(self) -> f64 {
        self.user_s + self.system_s
    }
}

/// This process's CPU time.
pub fn self_cpu() -> Cpu {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Cpu { user_s: tv(ru.ru_utime), system_s: tv(ru.ru_stime) }
}

/// Another process's CPU time, from /proc/PID/stat (fields 14 and 15, in clock ticks).
pub fn proc_cpu(pid: u32) -> Option<Cpu> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some(Cpu { user_s: utime / ticks, system_s: stime / ticks })
}

/// Resident memory of a process in KiB (VmRSS).
pub fn proc_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn self_rss_kib() -> Option<u64> {
    proc_rss_kib(std::process::id())
}

/// Raises the soft open-file limit to the hard limit and returns it.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}
