//! The authenticated caller and the role checks every handler asks.
//!
//! Must never contain authentication itself (key lookup is the gateway's): a `Principal` is
//! only built after a key has been verified.

use nexus_core::{ApiKeyId, UserId, UserRole};

/// Who is calling: the user behind a verified API key, with their role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The calling user.
    pub user_id: UserId,
    /// The user's role.
    pub role: UserRole,
    /// The key the call was authenticated with.
    pub api_key_id: ApiKeyId,
}

impl Principal {
    /// Whether the caller is an administrator.
    pub fn is_admin(&self) -> bool {
        match self.role {
            UserRole::Admin => true,
            UserRole::User | UserRole::Viewer => false,
        }
    }

    /// Whether the caller may create or change things (chat, edit agents, store credentials).
    /// Admins and users may; viewers may not.
    pub fn can_write(&self) -> bool {
        match self.role {
            UserRole::Admin | UserRole::User => true,
            UserRole::Viewer => false,
        }
    }

    /// Whether the caller may access a resource owned by `owner`: their own, or any if admin.
    pub fn can_access(&self, owner: UserId) -> bool {
        self.user_id == owner || self.is_admin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: UserRole) -> Principal {
        Principal {
            user_id: UserId::new(),
            role,
            api_key_id: ApiKeyId::new(),
        }
    }

    #[test]
    fn roles_grant_the_documented_rights() {
        let admin = principal(UserRole::Admin);
        let user = principal(UserRole::User);
        let viewer = principal(UserRole::Viewer);
        assert!(admin.is_admin() && admin.can_write());
        assert!(!user.is_admin() && user.can_write());
        assert!(!viewer.is_admin() && !viewer.can_write());
    }

    #[test]
    fn only_owner_or_admin_can_access_a_resource() {
        let admin = principal(UserRole::Admin);
        let user = principal(UserRole::User);
        let viewer = principal(UserRole::Viewer);
        assert!(user.can_access(user.user_id));
        assert!(viewer.can_access(viewer.user_id));
        assert!(!user.can_access(viewer.user_id));
        assert!(!viewer.can_access(user.user_id));
        assert!(admin.can_access(user.user_id));
    }
}
