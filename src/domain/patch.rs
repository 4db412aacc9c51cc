/// One field of a partial update: leave it as it is, or set it. Nullable
/// fields use `Patch<Option<T>>`, where `Set(None)` clears the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Set(T),
}

impl<T> Patch<T> {
    /// Validates a value that is being set.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Patch<U>, E> {
        Ok(match self {
            Patch::Keep => Patch::Keep,
            Patch::Set(value) => Patch::Set(f(value)?),
        })
    }
}

impl<T: PartialEq> Patch<T> {
    /// Whether applying it changes `current`: what an audit event lists.
    pub fn changes(&self, current: &T) -> bool {
        matches!(self, Patch::Set(value) if value != current)
    }
}
