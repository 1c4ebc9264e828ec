fn main() {
    std::process::exit(oncall::run());
}
